import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMockUpstream, writeExternalAccountAdc, type MockUpstream } from '../../tools/mock-upstream/index.js';
import { forSuite } from './suite.js';

/**
 * Points this process's AWS chain and Google ADC at made-up credentials only the mocks accept, for a
 * gateway started in this process: the caller's own AWS_* and GOOGLE_* variables are dropped first,
 * the AWS chain reads `accessKeyId`/`secretAccessKey` (no config files, no instance metadata), and
 * ADC reads an external_account file in `dir` whose token URL is the Vertex mock's STS endpoint.
 * The caller restores process.env afterwards (`scratchEnvForSuite` does).
 */
export function useMockCloudCredentials(dir: string, aws: { accessKeyId: string; secretAccessKey: string }, vertexMockUrl: string, subjectToken: string): void {
  for (const name of Object.keys(process.env)) if (name.startsWith('AWS_') || name.startsWith('GOOGLE_')) Reflect.deleteProperty(process.env, name);
  Object.assign(process.env, {
    AWS_ACCESS_KEY_ID: aws.accessKeyId,
    AWS_SECRET_ACCESS_KEY: aws.secretAccessKey,
    AWS_CONFIG_FILE: join(dir, 'none'),
    AWS_SHARED_CREDENTIALS_FILE: join(dir, 'none'),
    AWS_EC2_METADATA_DISABLED: 'true',
  });
  process.env.GOOGLE_APPLICATION_CREDENTIALS = writeExternalAccountAdc(dir, `${vertexMockUrl}/_mock/google/token`, subjectToken);
}

/** A scratch directory for the suite's credential files. */
export interface ScratchEnv {
  readonly dir: string;
}

/**
 * For the enclosing suite (or file): a fresh temporary directory (`prefix`-…) and leave to change
 * process.env in its tests and hooks; after them process.env is what it was and the directory is gone.
 * Register it before the hooks that use it.
 */
export function scratchEnvForSuite(prefix: string): ScratchEnv {
  return forSuite(
    () => Promise.resolve({ dir: mkdtempSync(join(tmpdir(), prefix)), saved: { ...process.env } }),
    ({ dir, saved }) => {
      process.env = saved;
      rmSync(dir, { recursive: true, force: true });
      return Promise.resolve();
    },
    `the suite's scratch directory (${prefix})`,
  );
}

/** One mock of each kind; Bedrock verifies SigV4 against the suite's key pair, Vertex's STS serves ADC. */
export interface CloudMocks {
  anthropic: MockUpstream;
  bedrock: MockUpstream;
  vertex: MockUpstream;
}

/**
 * For the enclosing suite (or file): a mock of each kind, with this process's AWS chain and Google
 * ADC pointed at them (`useMockCloudCredentials`, `aws` and `subjectToken`); after its tests the mocks
 * are closed, process.env restored and the credential files removed.
 */
export function cloudMocksForSuite(prefix: string, aws: { accessKeyId: string; secretAccessKey: string }, subjectToken: string): CloudMocks {
  const scratch = scratchEnvForSuite(prefix);
  return forSuite(
    async () => {
      const mocks: CloudMocks = {
        anthropic: await createMockUpstream(),
        bedrock: await createMockUpstream({ kind: 'bedrock', bedrock: { credentials: [aws] } }),
        vertex: await createMockUpstream({ kind: 'vertex' }),
      };
      useMockCloudCredentials(scratch.dir, aws, mocks.vertex.url, subjectToken);
      return mocks;
    },
    async (mocks) => {
      await Promise.all([mocks.anthropic.close(), mocks.bedrock.close(), mocks.vertex.close()]);
    },
    'the suite\'s cloud mocks',
  );
}
