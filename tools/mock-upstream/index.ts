export { createMockUpstream, type MockUpstream, type MockUpstreamOptions, type RecordedRequest } from './server.js';
export { MOCK_MODELS } from './routes.js';
export type { BilledUsage, MockStats } from './stats.js';
export { FAULT_HEADERS, FAULT_KINDS, type FaultKind, type FaultPlan } from './faults.js';
export { parseScript, validateScript, ScriptPlayer, type MockScript, type ScriptStep, type KeyBudgetSpec } from './script.js';
export { KeyBudgets, keyId } from './key-budget.js';
export { MOCK_KINDS, type MockKind, type BedrockMockOptions, type VertexMockOptions } from './providers.js';
export { BEDROCK_STREAM_FAULTS, type BedrockStreamFault } from './faults.js';
export { writeExternalAccountAdc } from './google-adc.js';
