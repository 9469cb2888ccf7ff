/**
 * Sets `key` in an insertion-ordered map holding at most `max` keys: a new key first lets the oldest
 * go when the map is full (a memo that forgets its oldest entry, not its most used). Returns `value`.
 */
export function setAtMost<K, V>(map: Map<K, V>, key: K, value: V, max: number): V {
  if (map.size >= max && !map.has(key)) map.delete(map.keys().next().value as K);
  map.set(key, value);
  return value;
}
