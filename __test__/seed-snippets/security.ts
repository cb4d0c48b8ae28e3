// Seed 000, Security Hardening: the user guide's TypeScript snippets, type-checked, never run.
// Conventions: see ./ambient.ts.
import fs from 'node:fs'
import type { Sandbox, SandboxConfig } from '../../index.js'
import {
  alertSecurity,
  generateAPIKey,
  logger,
  oldKey,
  revokeOldKey,
  updateEnvironment,
  type AuditEvent,
} from './ambient.js'

// seed 000 line 2650: Security Hardening › Security Checklist › Container Security
async function snippet_security_2650(sandboxConfig: SandboxConfig) {
// ANNOTATION: `!`: SandboxConfig.docker is optional, so strict mode needs it asserted present
sandboxConfig.docker!.readOnlyRoot = true;
}

// seed 000 line 2655: Security Hardening › Security Checklist › Container Security
async function snippet_security_2655(sandboxConfig: SandboxConfig) {
// ANNOTATION: `!`: SandboxConfig.docker is optional, so strict mode needs it asserted present
sandboxConfig.docker!.capDrop = ['ALL'];
}

// seed 000 line 2660: Security Hardening › Security Checklist › Container Security
async function snippet_security_2660(sandboxConfig: SandboxConfig) {
// ANNOTATION: `!`: SandboxConfig.docker is optional, so strict mode needs it asserted present
sandboxConfig.docker!.securityOpt = ['no-new-privileges'];
}

// seed 000 line 2665: Security Hardening › Security Checklist › Container Security
async function snippet_security_2665(sandboxConfig: SandboxConfig) {
// ANNOTATION: `!`: SandboxConfig.docker is optional, so strict mode needs it asserted present
sandboxConfig.docker!.user = 'agent';  // UID 1000
}

// seed 000 lines 2670–2675: Security Hardening › Security Checklist › Container Security
async function snippet_security_2670(sandboxConfig: SandboxConfig) {
sandboxConfig.limits = {
  memoryMB: 512,
  cpuCores: 1,
  diskMB: 1024,
  timeoutSeconds: 300
};
}

// seed 000 line 2684: Security Hardening › Security Checklist › Network Security
async function snippet_security_2684(sandboxConfig: SandboxConfig) {
sandboxConfig.networkMode = 'none';  // No network by default
}

// seed 000 lines 2689–2696: Security Hardening › Security Checklist › Network Security
async function snippet_security_2689(sandboxConfig: SandboxConfig) {
sandboxConfig.network = {
  policy: 'restricted',
  allowedHosts: [
    'api.anthropic.com',
    'api.openai.com',
    'github.com'
  ]
};
}

// seed 000 lines 2701–2704: Security Hardening › Security Checklist › Network Security
async function snippet_security_2701(url: string) {
// Enforce HTTPS in interceptor
if (url.startsWith('http://')) {
  throw new Error('HTTP not allowed, use HTTPS');
}
}

// seed 000 lines 2713–2723: Security Hardening › Security Checklist › Input Validation
async function snippet_security_2713() {
function sanitizePath(path: string): string {
  // Remove directory traversal
  const normalized = path.replace(/\.\./g, '');

  // Ensure within workspace
  if (!normalized.startsWith('/workspace')) {
    throw new Error('Path must be within /workspace');
  }

  return normalized;
}
}

// seed 000 lines 2728–2734: Security Hardening › Security Checklist › Input Validation
async function snippet_security_2728() {
const ALLOWED_COMMANDS = ['npm', 'node', 'git', 'ls', 'cat', 'mkdir'];

function validateCommand(command: string): void {
  if (!ALLOWED_COMMANDS.includes(command)) {
    throw new Error(`Command not allowed: ${command}`);
  }
}
}

// seed 000 lines 2739–2747: Security Hardening › Security Checklist › Input Validation
async function snippet_security_2739(sandbox: Sandbox) {
const MAX_FILE_SIZE = 10 * 1024 * 1024; // 10MB

async function writeFile(path: string, content: string): Promise<void> {
  if (content.length > MAX_FILE_SIZE) {
    throw new Error('File too large');
  }

  await sandbox.writeFile(path, content);
}
}

// seed 000 lines 2756–2761: Security Hardening › Security Checklist › Secrets Management
async function snippet_security_2756() {
function redactSecrets(log: string): string {
  return log
    .replace(/password=\S+/gi, 'password=REDACTED')
    .replace(/api[_-]?key=\S+/gi, 'api_key=REDACTED')
    .replace(/token=\S+/gi, 'token=REDACTED');
}
}

// seed 000 lines 2766–2769: Security Hardening › Security Checklist › Secrets Management
async function snippet_security_2766(sandboxConfig: SandboxConfig) {
sandboxConfig.env = {
  // ANNOTATION: `!`: process.env values are string | undefined; env takes strings
  API_KEY: process.env.API_KEY!,  // Don't hardcode
  // ANNOTATION: `!`: as above
  DATABASE_URL: process.env.DATABASE_URL!
};
}

// seed 000 lines 2774–2778: Security Hardening › Security Checklist › Secrets Management
async function snippet_security_2774() {
async function rotateCredentials() {
  const newKey = await generateAPIKey();
  await updateEnvironment({ API_KEY: newKey });
  await revokeOldKey(oldKey);
}
}

// seed 000 lines 2787–2796: Security Hardening › Security Checklist › Audit Logging
async function snippet_security_2787() {
function auditLog(event: AuditEvent): void {
  logger.info('AUDIT', {
    timestamp: Date.now(),
    sandboxId: event.sandboxId,
    agent: event.agentName,
    operation: event.operation,
    result: event.result,
    userId: event.userId
  });
}
}

// seed 000 lines 2801–2803: Security Hardening › Security Checklist › Audit Logging
async function snippet_security_2801(event: AuditEvent) {
// Write to append-only log file
const auditStream = fs.createWriteStream('audit.log', { flags: 'a' });
auditStream.write(JSON.stringify(event) + '\n');
}

// seed 000 lines 2808–2816: Security Hardening › Security Checklist › Audit Logging
async function snippet_security_2808() {
async function detectAnomalies(event: AuditEvent): Promise<void> {
  if (event.failedAttempts > 5) {
    await alertSecurity({
      severity: 'high',
      message: `Multiple failed attempts from ${event.sandboxId}`,
      details: event
    });
  }
}
}

// seed 000 lines 2824–2860: Security Hardening › Production Security Configuration
async function snippet_security_2824() {
const productionConfig: SandboxConfig = {
  provider: 'e2b',  // VM isolation

  limits: {
    memoryMB: 512,
    cpuCores: 1,
    diskMB: 1024,
    timeoutSeconds: 300,
    networkMbps: 10  // Limit bandwidth
  },

  networkMode: 'none',  // No network by default

  docker: {
    readOnlyRoot: true,
    capDrop: ['ALL'],
    securityOpt: [
      'no-new-privileges',
      'seccomp=default.json',
      'apparmor=docker-default'
    ],
    user: 'agent:agent',  // Non-root
    tmpfs: ['/tmp:rw,noexec,nosuid,size=100m']
  },

  e2b: {
    apiKey: process.env.E2B_API_KEY!,
    templateId: 'secure-node',
    region: 'us-east-1'
  },

  metadata: {
    environment: 'production',
    securityLevel: 'high',
    auditEnabled: true
  }
};
}
