import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../../src/config.js';

/** What loadConfig says is wrong with `env`: [] when it accepts it. */
export function configProblems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  return [];
}

/** The problems of an environment loadConfig must reject (fails the test when it accepts it). */
export function problemsOf(env: Record<string, string>): string[] {
  const found = configProblems(env);
  assert.ok(found.length > 0, 'expected loadConfig to reject the environment');
  return found;
}
