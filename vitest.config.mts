import { defineConfig } from 'vitest/config'
import { BaseSequencer } from 'vitest/node'
import type { TestSpecification } from 'vitest/node'

// Vitest's default sequencer orders files by cached duration/size, not by name. The suites share one
// Docker engine and zz-cleanup.spec.ts asserts that nothing is left behind, so run files in name order.
class ByNameSequencer extends BaseSequencer {
  async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    return [...files].sort((a, b) => (a.moduleId < b.moduleId ? -1 : a.moduleId > b.moduleId ? 1 : 0))
  }
}

export default defineConfig({
  test: {
    include: ['__test__/**/*.spec.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // 2 cores and one shared Docker engine: one file at a time, one test at a time.
    fileParallelism: false,
    // config.spec.ts uses process.chdir(), which worker threads do not allow.
    pool: 'forks',
    sequence: { concurrent: false, sequencer: ByNameSequencer },
  },
})
