import { join } from 'node:path';
import { writeExternalAccountAdc } from '../../tools/mock-upstream/index.js';

/**
 * Points this process's AWS chain and Google ADC at made-up credentials only the mocks accept, for a
 * gateway started in this process: the caller's own AWS_* and GOOGLE_* variables are dropped first,
 * the AWS chain reads `accessKeyId`/`secretAccessKey` (no config files, no instance metadata), and
 * ADC reads an external_account file in `dir` whose token URL is the Vertex mock's STS endpoint.
 * The caller restores process.env afterwards.
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
