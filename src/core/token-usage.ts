/** Token counts of one upstream call, as billed. */
export interface TokenUsage {
  input: number;
  output: number;
  cache_creation: number;
  cache_read: number;
}

export const TOKEN_TYPES = ['input', 'output', 'cache_creation', 'cache_read'] as const;
