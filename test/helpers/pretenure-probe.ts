import { getHeapSpaceStatistics } from 'node:v8';

/**
 * Preloaded into a gateway process (`node --import`): on SIGUSR2 it reports on stderr whether V8
 * pretenures a literal site whose objects at first all survived. It allocates 800,000 small objects
 * and keeps them (every one survives its scavenges), lets them go, then three times allocates
 * 200,000 more that die at once and notes how much the old generation grew meanwhile: about 9.5 MB
 * each time when the site was pretenured (they went straight to old space), about 0 when it was
 * not. It reports the least of the three: a collection finishing during one of them (which once
 * showed 14 MB without pretenuring) cannot pass for pretenuring three times over.
 */
const oldSpaceUsed = (): number => getHeapSpaceStatistics().find((s) => s.space_name === 'old_space')?.space_used_size ?? 0;
const makeRecord = (i: number): { id: number; tag: string; next: null } => ({ id: i, tag: 'probe', next: null });

process.on('SIGUSR2', () => {
  let kept: unknown[] = [];
  for (let i = 0; i < 800_000; i++) kept.push(makeRecord(i));
  kept = [];
  const growths: number[] = [];
  let last = makeRecord(-1);
  for (let round = 0; round < 3; round++) {
    const before = oldSpaceUsed();
    for (let i = 0; i < 200_000; i++) last = makeRecord(i);
    growths.push(oldSpaceUsed() - before);
  }
  process.stderr.write(`pretenure-probe ${JSON.stringify({ grewBytes: Math.min(...growths), growths, kept: kept.length, last: last.id })}\n`);
});
