// The package's types: the generated binding's (binding.d.ts, rewritten by every `napi build`)
// plus the classes and methods index.js adds in JavaScript.
import type { SandboxConfig } from './binding'

export * from './binding'

declare module './binding' {
  interface Sandbox {
    /** `await using sb = ...`: destroys the sandbox at the end of the scope. */
    [Symbol.asyncDispose](): Promise<void>
  }
  interface SandboxPool {
    /** `await using pool = ...`: destroys the pool and its sandboxes at the end of the scope. */
    [Symbol.asyncDispose](): Promise<void>
  }
  interface SandboxManager {
    /** `await using manager = ...`: `destroyAll()` at the end of the scope. */
    [Symbol.asyncDispose](): Promise<void>
  }
  interface SandboxedAgentExecutor {
    /** `await using executor = ...`: `cleanupAll()` at the end of the scope. */
    [Symbol.asyncDispose](): Promise<void>
  }
}

import { Sandbox } from './binding'

/**
 * A sandbox on Docker (seed 000 API reference): created by the constructor, started by
 * `start()`. Subclass it to wrap its methods (seed 000 Q14). Throws INVALID_CONFIG when
 * `config.provider` names another provider.
 */
export declare class DockerSandbox extends Sandbox {
  constructor(config?: SandboxConfig)
}

/** A sandbox on E2B (seed 000 API reference), like `DockerSandbox` with `provider: 'e2b'`. */
export declare class E2BSandbox extends Sandbox {
  constructor(config?: SandboxConfig)
}
