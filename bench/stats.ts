// Sample summaries, result cells and the error kinds the benchmark distinguishes.

export interface Stats {
  n: number
  p50: number
  p95: number
  mean: number
  min: number
  max: number
}

/** A measured cell: one path's numbers for one measure, or why there are none. */
export type Cell =
  | { ok: true; stats: Stats; note?: string }
  | { ok: false; error: string; wrongData?: boolean }

/** Thrown when a path returned data that does not match what was written or expected. */
export class WrongDataError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'WrongDataError'
  }
}

/** Nearest-rank percentile of sorted samples. */
function percentile(sorted: number[], p: number): number {
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]
}

export function summarize(samples: number[]): Stats {
  if (samples.length === 0) throw new Error('no samples')
  const sorted = [...samples].sort((a, b) => a - b)
  const sum = sorted.reduce((a, b) => a + b, 0)
  return {
    n: sorted.length,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    mean: sum / sorted.length,
    min: sorted[0],
    max: sorted[sorted.length - 1],
  }
}

export function single(value: number): Stats {
  return summarize([value])
}

export function okCell(stats: Stats, note?: string): Cell {
  return note ? { ok: true, stats, note } : { ok: true, stats }
}

export function errorCell(err: unknown): Cell {
  const e = err as { message?: string; code?: string }
  const msg = (e?.message ?? String(err)).split('\n')[0].slice(0, 200)
  const text = e?.code && !msg.includes(e.code) ? `${e.code}: ${msg}` : msg
  return err instanceof WrongDataError ? { ok: false, error: text, wrongData: true } : { ok: false, error: text }
}

/** Rejects with a clear message when `p` does not settle within `seconds`. */
export async function withTimeout<T>(p: Promise<T>, seconds: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${seconds} s`)), seconds * 1000)
  })
  try {
    return await Promise.race([p, timeout])
  } finally {
    clearTimeout(timer)
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

export function elapsedMs(t0: number): number {
  return performance.now() - t0
}

/** p50/p95 of `fn` over `count` runs after a warm-up; `after` runs untimed after each one. */
export async function time(count: number, fn: (i: number) => Promise<void>, after?: (i: number) => Promise<void>): Promise<Stats> {
  await fn(-1) // warm-up
  await after?.(-1)
  const samples: number[] = []
  for (let i = 0; i < count; i++) {
    const t0 = performance.now()
    await fn(i)
    samples.push(performance.now() - t0)
    await after?.(i)
  }
  return summarize(samples)
}
