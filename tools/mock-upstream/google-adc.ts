import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Writes Google Application Default Credentials that work offline against the Vertex mock: an
 * `external_account` (workload identity federation) file whose subject token is read from a file
 * and exchanged at `tokenUrl` (the mock's STS endpoint, `/_mock/google/token`) for access tokens the
 * mock accepts. The real google-auth-library does the exchange. Returns the ADC file's path.
 */
export function writeExternalAccountAdc(dir: string, tokenUrl: string, subjectToken: string, name = 'adc.json'): string {
  const subject = join(dir, `${name}.subject-token`);
  writeFileSync(subject, subjectToken);
  const file = join(dir, name);
  writeFileSync(
    file,
    JSON.stringify({
      type: 'external_account',
      audience: '//iam.googleapis.com/projects/0/locations/global/workloadIdentityPools/mock/providers/mock',
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      token_url: tokenUrl,
      credential_source: { file: subject },
    }),
  );
  return file;
}
