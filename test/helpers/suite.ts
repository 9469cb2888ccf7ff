import { after, before } from 'node:test';

/**
 * Fixtures start one after the other, in the order they were declared: a fixture may use one declared
 * before it. (Node 20 runs `before` hooks at the top level of a file concurrently, not in order; inside
 * a `describe` they run in order anyway.) A failed start does not hold up the next; its suite fails.
 */
let starts: Promise<unknown> = Promise.resolve();

/**
 * A resource the enclosing `describe` (or file) starts once before its tests and stops after them.
 * Returned at once, as a stand-in that forwards every property to the started resource, so suites
 * write `const redis = forSuite(...)` and use `redis.url` in their tests. Reading it outside a test
 * (before `before` ran or after `after`) throws: the resource does not exist then. At the top level
 * of a file, a plain `before` that uses it may run before it started: make that set-up a fixture too.
 */
export function forSuite<T extends object>(start: () => Promise<T>, stop: (resource: T) => Promise<void>, what = 'the suite\'s fixture'): T {
  let resource: T | undefined;
  before(async () => {
    const started = starts.then(start);
    starts = started.catch(() => undefined);
    resource = await started;
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
