// The package's entry: the generated napi-rs binding (binding.js, binding.d.ts: rewritten by
// every `napi build`) plus what cannot be written in Rust: classes that JavaScript code
// subclasses (seed 000 Q14: `class AuditedSandbox extends DockerSandbox`) and the
// `Symbol.asyncDispose` methods behind `await using`.
'use strict'

const binding = require('./binding.js')

const { Sandbox, SandboxPool, SandboxManager, SandboxedAgentExecutor } = binding

// Node 20 has Symbol.asyncDispose; the fallback is the key Node used before it was standard.
const asyncDispose = Symbol.asyncDispose || Symbol.for('nodejs.asyncDispose')

function disposeWith(Class, method) {
  Object.defineProperty(Class.prototype, asyncDispose, {
    value: function () {
      return this[method]()
    },
    writable: true,
    configurable: true,
  })
}

// `await using sb = ...` ends the scope with these (errors propagate, as for any dispose).
disposeWith(Sandbox, 'destroy')
disposeWith(SandboxPool, 'destroy')
disposeWith(SandboxManager, 'destroyAll')
disposeWith(SandboxedAgentExecutor, 'cleanupAll')

function configFor(provider, className, config) {
  if (config !== undefined && config !== null && (typeof config !== 'object' || Array.isArray(config))) {
    throw codedError('INVALID_CONFIG', `new ${className}(config) takes a SandboxConfig object, got ${typeof config}`)
  }
  const given = config && config.provider
  if (given !== undefined && given !== null && given !== provider) {
    throw codedError(
      'INVALID_CONFIG',
      `${className} is the '${provider}' provider, but config.provider is '${given}'; ` +
        `use new Sandbox({ provider: '${given}' }) or manager.createSandbox({ provider: '${given}' })`,
    )
  }
  return { ...config, provider }
}

function codedError(code, message) {
  const err = new Error(message)
  err.code = code
  return err
}

/** A sandbox on Docker (seed 000 API reference): `new DockerSandbox(config)`, then `start()`. */
class DockerSandbox extends Sandbox {
  constructor(config) {
    super(configFor('docker', 'DockerSandbox', config))
  }
}

/** A sandbox on E2B (seed 000 API reference): `new E2BSandbox(config)`, then `start()`. */
class E2BSandbox extends Sandbox {
  constructor(config) {
    super(configFor('e2b', 'E2BSandbox', config))
  }
}

module.exports = { ...require('./binding.js'), DockerSandbox, E2BSandbox }
