// The stdout table, the targets (PASS/MISS) and the JSON written to bench/results.json.
import type { Cell } from './stats.js'

export interface Measure {
  key: string
  title: string
  unit: 'ms' | 'KB'
  /** The path the ratio column divides by (default addon-guest). */
  baseline?: string
  note?: string
  cells: Record<string, Cell>
}

export interface TargetCheck {
  name: string
  value: string
  status: 'PASS' | 'MISS' | 'n/a'
}

function fmtValue(v: number, unit: Measure['unit']): string {
  if (unit === 'KB') return v >= 1024 ? `${(v / 1024).toFixed(2)} MB` : `${v.toFixed(0)} KB`
  if (v >= 1000) return `${(v / 1000).toFixed(2)} s`
  if (v >= 100) return `${v.toFixed(0)} ms`
  if (v >= 10) return `${v.toFixed(1)} ms`
  return `${v.toFixed(2)} ms`
}

function fmtRatio(r: number): string {
  if (r >= 10) return `${r.toFixed(1)}×`
  return r >= 0.1 ? `${r.toFixed(2)}×` : `${r.toPrecision(2)}×`
}

export function median(m: Measure | undefined, path: string): number | undefined {
  const c = m?.cells[path]
  return c && c.ok ? c.stats.p50 : undefined
}

export function renderTable(measures: Measure[]): string {
  const out: string[] = []
  const pad = (s: string, n: number) => s.padEnd(n)
  const lpad = (s: string, n: number) => s.padStart(n)
  for (const m of measures) {
    // Ratios are against the guest engine; while it cannot be measured, against the exec engine.
    const baseline = m.baseline ?? (median(m, 'addon-guest') === undefined && median(m, 'addon-exec') !== undefined ? 'addon-exec' : 'addon-guest')
    const base = median(m, baseline)
    out.push('')
    out.push(`${m.title}${m.note ? `  (${m.note})` : ''}`)
    out.push(`  ${pad('path', 22)}${lpad('n', 5)}  ${pad('p50', 24)}${lpad('p95', 10)}${lpad('mean', 10)}`)
    for (const [path, c] of Object.entries(m.cells)) {
      if (!c.ok) {
        out.push(`  ${pad(path, 22)}${lpad('', 5)}  ${c.wrongData ? 'FAIL: WRONG DATA: ' : 'n/a ('}${c.error}${c.wrongData ? '' : ')'}`)
        continue
      }
      const s = c.stats
      const ratio = base !== undefined && path !== baseline ? ` (${fmtRatio(s.p50 / base)})` : path === baseline && base !== undefined ? ' (1×)' : ''
      out.push(
        `  ${pad(path, 22)}${lpad(String(s.n), 5)}  ${pad(fmtValue(s.p50, m.unit) + ratio, 24)}${lpad(s.n > 1 ? fmtValue(s.p95, m.unit) : '', 10)}${lpad(s.n > 1 ? fmtValue(s.mean, m.unit) : '', 10)}${c.note ? `  ${c.note}` : ''}`,
      )
    }
    if (base !== undefined) out.push(`  ratios: p50 / p50 of ${baseline}${!m.baseline && baseline !== 'addon-guest' ? ' (addon-guest not measured)' : ''}`)
  }
  return out.join('\n')
}

function check(name: string, value: number | undefined, fmt: (v: number) => string, pass: (v: number) => boolean): TargetCheck {
  if (value === undefined || !Number.isFinite(value)) return { name, value: 'n/a', status: 'n/a' }
  return { name, value: fmt(value), status: pass(value) ? 'PASS' : 'MISS' }
}

export function evaluateTargets(byKey: Record<string, Measure>): TargetCheck[] {
  const exec = byKey['exec']
  const guestExec = median(exec, 'addon-guest')
  const ratio = (other: string) => {
    const o = median(exec, other)
    return guestExec !== undefined && o !== undefined ? o / guestExec : undefined
  }
  const ms = (v: number) => fmtValue(v, 'ms')
  const x = (v: number) => fmtRatio(v)
  const addonCreate = median(byKey['create'], 'addon-guest')
  const rawCreate = median(byKey['create'], 'raw-api')
  return [
    check('guest exec p50 ≤ 2 ms', guestExec, ms, (v) => v <= 2),
    check('guest exec ≥ 30× faster than dockerode', ratio('dockerode'), x, (v) => v >= 30),
    check('guest exec ≥ 30× faster than docker CLI', ratio('docker-cli'), x, (v) => v >= 30),
    check('1 MB writeFile p50 ≤ 20 ms (guest)', median(byKey['write-1m'], 'addon-guest'), ms, (v) => v <= 20),
    check('1 MB readFile p50 ≤ 20 ms (guest)', median(byKey['read-1m'], 'addon-guest'), ms, (v) => v <= 20),
    check('pooled acquire p50 ≤ 5 ms', median(byKey['pool'], 'pool.acquire'), ms, (v) => v <= 5),
    check(
      'create+start ≤ 1.2× raw Docker API (guest)',
      addonCreate !== undefined && rawCreate !== undefined ? addonCreate / rawCreate : undefined,
      x,
      (v) => v <= 1.2,
    ),
    check('guest daemon RSS ≤ 5 MB', median(byKey['rss'], 'addon-guest'), (v) => fmtValue(v, 'KB'), (v) => v <= 5 * 1024),
  ]
}

export function renderTargets(targets: TargetCheck[]): string {
  const out = ['', 'Targets']
  for (const t of targets) out.push(`  ${t.name.padEnd(46)}${t.value.padStart(10)}  ${t.status}`)
  return out.join('\n')
}
