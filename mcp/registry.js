// The sandboxes an MCP server holds: who owns each, when it expires, how many there may be.
// Sandboxes belong to the server process; they are destroyed when their lifetime (`timeout`)
// or the idle limit passes, when their MCP session ends (unless shared), and when the server stops.
'use strict'

class ToolError extends Error {
  /** @param {string} code a stable code (the library's: SANDBOX_NOT_FOUND, QUOTA_EXCEEDED, ...) */
  constructor(code, message) {
    super(message)
    this.code = code
  }
}

class SandboxRegistry {
  /**
   * @param {import('../index').SandboxManager} manager
   * @param {{ maxSandboxes: number, idleTimeoutSeconds: number, defaultTimeoutSeconds: number, shared: boolean, log: (level: string, message: string) => void }} options
   */
  constructor(manager, options) {
    this.manager = manager
    this.options = options
    /** @type {Map<string, any>} id → entry */
    this.entries = new Map()
    /** slots taken by creations still starting */
    this.pending = 0
    this.closed = false
    if (options.idleTimeoutSeconds > 0) {
      const every = Math.min(30_000, Math.max(1_000, (options.idleTimeoutSeconds * 1000) / 4))
      this.idleTimer = setInterval(() => this.reapIdle(), every)
      this.idleTimer.unref()
    }
  }

  /** Reserve a slot for a new sandbox (QUOTA_EXCEEDED past the limit). Returns the release function. */
  reserve() {
    if (this.closed) throw new ToolError('SANDBOX_NOT_RUNNING', 'the server is shutting down; no new sandboxes')
    const max = this.options.maxSandboxes
    if (this.entries.size + this.pending >= max) {
      throw new ToolError(
        'QUOTA_EXCEEDED',
        `this server holds at most ${max} sandboxes and has ${this.entries.size + this.pending}; delete one with sandbox_delete (see sandbox_list), or start the server with a higher --max-sandboxes`,
      )
    }
    this.pending++
    let released = false
    return () => {
      if (!released) {
        released = true
        this.pending--
      }
    }
  }

  /** Track a started sandbox; it is destroyed after `info.timeout` seconds. */
  add(sandbox, info, owner) {
    const now = Date.now()
    const entry = { ...info, id: sandbox.id, sandbox, owner, createdAt: now, lastUsed: now, busy: 0, expiresAt: now + info.timeout * 1000 }
    entry.timer = setTimeout(() => void this.expire(entry.id, `its lifetime of ${info.timeout} s ended`), info.timeout * 1000)
    entry.timer.unref()
    this.entries.set(entry.id, entry)
    return entry
  }

  /** Run `fn(entry)` on `owner`'s sandbox `id`; it does not count as idle meanwhile. */
  async use(id, owner, fn) {
    const e = this.get(id, owner)
    e.busy++
    try {
      return await fn(e)
    } finally {
      e.busy--
      e.lastUsed = Date.now()
    }
  }

  /** The entry of `id` as `owner` sees it (SANDBOX_NOT_FOUND otherwise); marks it used. */
  get(id, owner) {
    const e = this.entries.get(id)
    if (!e || !this.visible(e, owner)) {
      throw new ToolError(
        'SANDBOX_NOT_FOUND',
        `no sandbox '${id}' on this server; call sandbox_list for the ones you have (sandboxes end after their timeout, when idle for ${this.options.idleTimeoutSeconds} s, or when the server stops), or create one with sandbox_create`,
      )
    }
    e.lastUsed = Date.now()
    return e
  }

  visible(e, owner) {
    return this.options.shared || e.owner === owner
  }

  list(owner) {
    return [...this.entries.values()].filter((e) => this.visible(e, owner))
  }

  async remove(id) {
    const e = this.entries.get(id)
    if (!e) return false
    this.entries.delete(id)
    clearTimeout(e.timer)
    await e.sandbox.destroy()
    return true
  }

  async expire(id, why) {
    if (!this.entries.has(id)) return
    this.options.log('info', `destroying sandbox ${id}: ${why}`)
    try {
      await this.remove(id)
    } catch (e) {
      this.options.log('error', `could not destroy sandbox ${id}: ${e.message}`)
    }
  }

  reapIdle() {
    const limit = this.options.idleTimeoutSeconds * 1000
    const now = Date.now()
    for (const e of this.entries.values()) {
      if (e.busy === 0 && now - e.lastUsed > limit) void this.expire(e.id, `idle for more than ${this.options.idleTimeoutSeconds} s`)
    }
  }

  /** Destroy the sandboxes of one MCP session (HTTP sessions that end), unless shared. */
  async closeOwner(owner) {
    if (this.options.shared) return
    await Promise.allSettled(this.list(owner).map((e) => this.expire(e.id, 'its MCP session ended')))
  }

  /** Destroy everything (server shutdown). */
  async closeAll() {
    this.closed = true
    clearInterval(this.idleTimer)
    const ids = [...this.entries.keys()]
    await Promise.allSettled(ids.map((id) => this.remove(id)))
    // sandboxes whose creation was still under way belong to the manager too
    await this.manager.destroyAll().catch(() => {})
  }
}

module.exports = { SandboxRegistry, ToolError }
