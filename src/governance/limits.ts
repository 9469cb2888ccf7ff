import type { KeyLimits } from './model.js';

/**
 * Whether a key's `limits.models` lets it call `model`: each entry is a model id, or a prefix ending
 * in `*` (`claude-sonnet-*`). No list: every model. A request that names no model (model listing,
 * files, batches: their models are inside the batch) is not refused here.
 */
export function modelAllowed(limits: KeyLimits, model: string | undefined): boolean {
  const models = limits.models;
  if (models === undefined || model === undefined) return true;
  for (const entry of models) {
    if (entry.endsWith('*') ? model.startsWith(entry.slice(0, -1)) : model === entry) return true;
  }
  return false;
}
