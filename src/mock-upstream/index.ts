export { createMockUpstream, MOCK_MODELS, type MockStats, type MockUpstream, type MockUpstreamOptions, type RecordedRequest, type BilledUsage } from './server.js';
export type { FaultPlan, FaultKind } from './faults.js';
