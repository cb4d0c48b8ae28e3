// Seed 000 (the user guide) type-checked: every ```typescript snippet of the guide is in one of
// the files of this folder, by section, and `npx tsc -p .` checks them against index.d.ts. Nothing
// here runs: vitest only collects `*.spec.ts` (so no file here may be named so), and every
// snippet sits in a function nobody calls.
//
// How a snippet is kept:
// - `// seed 000 lines A–B: <headings>` above it; its lines follow verbatim, unindented (so the
//   template literals keep their exact text), inside `async function snippet_<file>_<A>(...)`, or
//   at module level when another snippet uses what it declares.
// - Its imports are rewritten at the top of the file: the library's to '../../index.js', anything
//   else to this file's stubs (or to Node's own module). The original import line stays, as a comment.
// - What a snippet uses without defining it: the library's context objects (`sandbox`, `manager`,
//   `executor`, `config`, `task`, ...) are typed parameters of its function; everything that is not
//   the library's (the guide's federation hub, `exec`, an application logger, ...) is declared
//   below, as small as the snippets need it.
// - A `// ANNOTATION:` line marks a change TypeScript itself requires and nothing else (`as const`
//   on a widened literal, `!` where strict mode cannot see a value is defined, `catch (e: any)`),
//   or a `declare` member stub for a class member the guide uses but never shows (it emits nothing).
// - A `// DIFFERENCE:` line marks any other change, with why; README.md lists them all under
//   "Differences from the proof of concept" › "The user guide's TypeScript snippets".
// - A snippet that shows a "❌ Bad" and a "✅ Good" version declaring the same names twice (which
//   neither TypeScript nor JavaScript allows in one scope) is checked as two parts, unchanged.
import type { SandboxedExecutionResult } from '../../index.js'

// Quick Start Level 3, Federation Integration, Troubleshooting, FAQ Q18/Q19: agentic-flow's
// federation hub (`./src/federation/FederationHub.js`), not part of this library.
export declare class FederationHub {
  constructor(options: { port: number; dbPath?: string; region?: string })
  start(): Promise<void>
  stop(): Promise<void>
  storeMemory(memory: { namespace: string; data: unknown }): Promise<void>
  searchMemories(query: { query: string; namespace: string; k?: number }): Promise<unknown[]>
  connectToPeer(url: string): Promise<void>
}

// Custom Tool Interceptors: the guide's hub logging helper.
export declare function logToHub(event: Record<string, unknown>): Promise<void>

// Troubleshooting, Performance Tuning, FAQ Q9: a promisified `child_process.exec`.
export declare function exec(command: string): Promise<{ stdout: string; stderr: string }>

// Performance Tuning › Parallel Execution: lodash's `chunk`.
export declare function chunk<T>(array: T[], size: number): T[][]

// FAQ Q21: a delay.
export declare function sleep(ms: number): Promise<void>

// Provider Selection: the decision tree's own types, which the guide does not show.
export interface Requirements {
  environment: string
  cicd: boolean
  multiTenant: boolean
  production: boolean
  customImage: boolean
  globalDeployment: boolean
}
export type Provider = 'docker' | 'e2b'

// Security Hardening, Best Practices, Anti-Patterns: the application's own logger (structured
// info/warn/error). Where the guide calls `logger.setLevel(...)` (Debugging Tips, FAQ Q9) it is
// the library's `logger`, imported from '../../index.js' instead.
export declare const logger: {
  debug(message: string, fields?: Record<string, unknown>): void
  info(message: string, fields?: Record<string, unknown>): void
  warn(message: string, fields?: Record<string, unknown>): void
  error(message: string, fields?: Record<string, unknown>): void
}

// Security Hardening › Secrets Management and Audit Logging; FAQ Q13.
export interface AuditEvent {
  sandboxId: string
  agentName: string
  operation: string
  result: string
  userId: string
  failedAttempts: number
}
export declare function alertSecurity(alert: { severity: 'low' | 'medium' | 'high'; message: string; details: unknown }): Promise<void>
export declare function generateAPIKey(): Promise<string>
export declare function updateEnvironment(env: Record<string, string>): Promise<void>
export declare function revokeOldKey(key: string): Promise<void>
export declare const oldKey: string
export declare function generateTempAPIKey(options: { expiresIn: number; rateLimit: number }): Promise<string>
export declare function revokeAPIKey(key: string): Promise<void>

// FAQ Q14: the application's audit sink (not the Security Hardening section's `auditLog(event)`).
export declare function auditLog(entry: Record<string, unknown>): Promise<void>

// Best Practices › Implement Graceful Degradation: what `executeWithFallback` resolves with.
export type Result = SandboxedExecutionResult

// Monitoring › Distributed Tracing: the part of '@opentelemetry/api' (1.10) the snippet uses,
// with its signatures (the package is not a dependency of this one).
export declare enum SpanStatusCode {
  UNSET = 0,
  OK = 1,
  ERROR = 2,
}
export interface Span {
  setAttribute(key: string, value: unknown): this
  setStatus(status: { code: SpanStatusCode; message?: string }): this
  recordException(exception: string | { message?: string; name?: string; code?: string | number }, time?: number | Date): void
  end(endTime?: number | Date): void
}
export interface Tracer {
  startActiveSpan<F extends (span: Span) => unknown>(name: string, fn: F): ReturnType<F>
}
export declare const trace: { getTracer(name: string, version?: string): Tracer }
export declare const context: { active(): unknown }
