/**
 * Shared by the E2B examples (`examples/e2b-*.ts`): decide whether an example runs against the
 * real E2B cloud or against the local fake of `./fake-e2b.ts`, and build the `e2b` part of the
 * sandbox config for it.
 *
 * - `E2B_API_KEY` set (and no `--fake` flag): the real E2B. The key and the optional `E2B_DOMAIN`,
 *   `E2B_API_URL`, `E2B_SANDBOX_URL` and `E2B_REGION` are read from the environment by the provider
 *   itself; the template is `E2B_TEMPLATE_ID`, else `base` (E2B's default template). The guide's
 *   template names ('node-typescript', 'python3', 'secure-node') are illustrations, not templates
 *   every E2B account has, so they are only used with the fake.
 * - Otherwise: a local fake E2B (real wire protocol; each sandbox is a local Docker container with
 *   no network) is started and the provider is pointed at it with `apiUrl` and `sandboxUrl`.
 *   Nothing leaves the machine.
 */
import type { SandboxConfig } from '../../index.js';
import { startFakeE2b, type FakeE2b } from './fake-e2b.js';

/** The `e2b` object of a sandbox config (what `src/providers/e2b/options.rs` reads). */
export interface E2bConfig {
  /** `e2b_` + hex; default: E2B_API_KEY */
  apiKey?: string;
  /** template name, alias or id; default: E2B_TEMPLATE_ID, else 'base' */
  templateId?: string;
  /** informational: E2B places sandboxes itself */
  region?: string;
  /** default: E2B_DOMAIN, else 'e2b.app' */
  domain?: string;
  /** control plane base URL; default: E2B_API_URL, else https://api.<domain> */
  apiUrl?: string;
  /** envd base URL for every sandbox; default: E2B_SANDBOX_URL, else per sandbox on <domain> */
  sandboxUrl?: string;
}

/**
 * A sandbox config with the `e2b` object spelled as the provider reads it. (The generated
 * `index.d.ts` names the field `e2B` and lacks `apiUrl`/`sandboxUrl`, so configs are declared with
 * this type and passed as variables.)
 */
export type E2bSandboxConfig = Omit<SandboxConfig, 'e2B'> & { e2b?: E2bConfig };

export interface E2bTarget {
  kind: 'real' | 'fake';
  /** The `e2b` object for `createSandbox`: the given fields plus the connection settings. */
  e2b(fields?: { templateId?: string; region?: string }): E2bConfig;
  /** The fake, when running against it (for the fallback demo's closed-port trick and cleanup). */
  fake?: FakeE2b;
  /** Closes the fake (removing its containers); no-op against the real E2B. */
  close(): Promise<void>;
}

export interface TargetOptions {
  /** Image of the fake's sandbox containers (default: the fake's BusyBox image). */
  fakeImage?: string;
}

/**
 * Picks the target: the real E2B when `E2B_API_KEY` is set and `--fake` was not given, else a
 * freshly started local fake. Prints one line saying which.
 */
export async function e2bTarget(example: string, opts: TargetOptions = {}): Promise<E2bTarget> {
  const forceFake = process.argv.slice(2).includes('--fake');
  const key = process.env.E2B_API_KEY?.trim();

  if (key && !forceFake) {
    const template = process.env.E2B_TEMPLATE_ID?.trim() || 'base';
    console.log(`☁️  Running against the real E2B (${process.env.E2B_API_URL || `api.${process.env.E2B_DOMAIN || 'e2b.app'}`}), template '${template}'.`);
    return {
      kind: 'real',
      // domain, apiUrl and sandboxUrl stay unset: the provider reads
      // E2B_DOMAIN, E2B_API_URL and E2B_SANDBOX_URL (and E2B_REGION) itself.
      e2b: (fields = {}) => ({ apiKey: key, ...fields, templateId: template }),
      close: async () => {},
    };
  }

  const fake = await startFakeE2b(opts.fakeImage ? { image: opts.fakeImage } : {});
  console.log(
    `🧪 Running against a local fake E2B (${fake.apiUrl}; sandboxes are local Docker containers` +
      `${opts.fakeImage ? ` of ${opts.fakeImage}` : ''}). ` +
      `For the real E2B: E2B_API_KEY=e2b_... npx tsx examples/${example}` +
      (key ? ' (without --fake)' : ''),
  );
  return {
    kind: 'fake',
    fake,
    e2b: (fields = {}) => ({ ...fields, apiKey: fake.apiKey, apiUrl: fake.apiUrl, sandboxUrl: fake.sandboxUrl }),
    close: () => fake.close(),
  };
}
