import { after, before } from 'node:test';

/**
 * A resource the enclosing `describe` (or file) starts once before its tests and stops after them.
 * Returned at once, as a stand-in that forwards every property to the started resource, so suites
 * write `const redis = forSuite(...)` and use `redis.url` in their tests. Reading it outside a test
 * (before `before` ran or after `after`) throws: the resource does not exist then.
 */
export function forSuite<T extends object>(start: () => Promise<T>, stop: (resource: T) => Promise<void>, what = 'the suite\'s fixture'): T {
  let resource: T | undefined;
  before(async () => {
    resource = await start();
  });
  after(async () => {
    const started = resource;
    resource = undefined;
    if (started !== undefined) await stop(started);
  });
  const current = (): T => {
    if (resource === undefined) throw new Error(`${what} is used outside its suite's tests`);
    return resource;
  };
  return new Proxy({} as T, {
    get(_, property) {
      const target = current();
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
    has: (_, property) => Reflect.has(current(), property),
  });
}
