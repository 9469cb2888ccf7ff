/**
 * Preloaded into a gateway process started with `--allow-natives-syntax` (`node --import`): on
 * SIGUSR2 it reports on stderr whether V8 pretenures a literal site whose objects all survive.
 *
 * Each attempt compiles a fresh literal site, allocates objects from it in batches and keeps every
 * one (all survive their scavenges, which is what makes V8 decide to pretenure a site), and after
 * each batch asks V8 where a freshly allocated object of that site lives. A fresh object is in the
 * young generation unless its site was pretenured, whatever collections ran meanwhile, so the
 * answer does not depend on when a collection lands (the old probe compared old-space sizes, and a
 * major collection finishing inside the measurement made it negative). A site whose objects once
 * died young is marked "don't tenure" for good, hence a fresh site per attempt rather than one
 * site for ever. With pretenuring on, V8 decides within a few batches; the probe stops at the
 * first fresh object in the old generation or after every attempt, and reports how many objects it took.
 */
const ATTEMPTS = 5;
const BATCHES_PER_ATTEMPT = 12;
const BATCH = 100_000;

type Make = (i: number) => { id: number; tag: string; next: null };

/* eslint-disable @typescript-eslint/no-implied-eval -- V8's own answer (a natives-syntax runtime function: TypeScript cannot parse `%`), and a fresh literal site per attempt */
const inYoungGeneration = new Function('o', 'return %InYoungGeneration(o)') as (o: unknown) => boolean;
const freshSite = (attempt: number): Make => new Function('i', `return { id: i, tag: 'probe-${attempt}', next: null };`) as Make;
/* eslint-enable @typescript-eslint/no-implied-eval */

process.on('SIGUSR2', () => {
  let objects = 0;
  let pretenured = false;
  for (let attempt = 0; attempt < ATTEMPTS && !pretenured; attempt++) {
    const make = freshSite(attempt);
    const kept: unknown[] = [];
    for (let batch = 0; batch < BATCHES_PER_ATTEMPT && !pretenured; batch++) {
      for (let i = 0; i < BATCH; i++) kept.push(make(i));
      objects += BATCH;
      pretenured = !inYoungGeneration(make(-1));
    }
  }
  process.stderr.write(`pretenure-probe ${JSON.stringify({ pretenured, objects })}\n`);
});
