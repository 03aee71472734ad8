import { test } from 'node:test';
import assert from 'node:assert/strict';
import { piecewiseSchedule, parseSchedule, BetaPid } from '../src/train/schedule.ts';

const close = (a: number, b: number, rel = 1e-12) =>
  assert.ok(Math.abs(a - b) <= rel * Math.max(Math.abs(a), Math.abs(b), 1e-300), `${a} != ${b}`);

test('piecewise schedule: constant, linear and log segments give the documented values', () => {
  const f = piecewiseSchedule([
    { epoch: 0, beta: 0, interp: 'linear' },
    { epoch: 10, beta: 1e-5, interp: 'log' },
    { epoch: 20, beta: 1e-3, interp: 'constant' },
    { epoch: 30, beta: 5e-3, interp: 'linear' },
  ]);
  assert.equal(f(0), 0);
  close(f(5), 0.5e-5);
  close(f(10), 1e-5);
  close(f(15), 1e-4); // geometric midpoint of 1e-5 and 1e-3
  close(f(12), 1e-5 * 100 ** 0.2);
  close(f(20), 1e-3);
  close(f(29), 1e-3); // constant until the next key
  close(f(30), 5e-3);
  close(f(1000), 5e-3); // last key holds
  assert.equal(f(-3), 0); // before the first key
});

test('piecewise schedule: keys are sorted; bad keys are rejected with a message', () => {
  const f = piecewiseSchedule([
    { epoch: 4, beta: 2, interp: 'constant' },
    { epoch: 0, beta: 1, interp: 'linear' },
  ]);
  close(f(2), 1.5);
  assert.throws(() => piecewiseSchedule([]), /at least one key/);
  assert.throws(
    () =>
      piecewiseSchedule([
        { epoch: 0, beta: 0, interp: 'log' },
        { epoch: 5, beta: 1, interp: 'constant' },
      ]),
    /log interpolation .* β > 0/,
  );
  assert.throws(() => piecewiseSchedule([{ epoch: 0, beta: 1, interp: 'cubic' as 'log' }]), /unknown interpolation 'cubic'/);
  assert.throws(() => piecewiseSchedule([{ epoch: 0, beta: -1, interp: 'constant' }]), /≥ 0/);
});

test('schedule spec parsing', () => {
  assert.deepEqual(parseSchedule('0:1e-7:log, 20:1e-5'), [
    { epoch: 0, beta: 1e-7, interp: 'log' },
    { epoch: 20, beta: 1e-5, interp: 'constant' },
  ]);
  assert.throws(() => parseSchedule('0:abc'), /bad key point '0:abc'/);
  assert.throws(() => parseSchedule('0:1:quad'), /unknown interpolation 'quad'/);
});

test('PID: bumpless start returns β0, then too many EBOPs raises β and too few lowers it', () => {
  const pid = new BetaPid({ targetEbops: 1000, p: 0.5, i: 0.1 });
  pid.start(1e-5, 4000);
  close(pid.update(4000), 1e-5, 1e-9);
  // still 10× over target: β grows by 10^(i·e) with e = 1 (integral accumulates)
  const b1 = pid.update(10000);
  assert.ok(b1 > 1e-5);
  // hand value: out_prev = log10(1e-5) with e0 = log10(4); now e = 1
  // out = p·e + i·(I + e), where I after the first update satisfied p·e0 + i·I0 = -5
  const e0 = Math.log10(4);
  const I0 = (-5 - 0.5 * e0) / 0.1;
  close(b1, 10 ** (0.5 * 1 + 0.1 * (I0 + 1)), 1e-9);
  const p2 = new BetaPid({ targetEbops: 1000, p: 0.5, i: 0.1 });
  p2.start(1e-5, 1000);
  p2.update(1000);
  assert.ok(p2.update(100) < 1e-5);
  const p3 = new BetaPid({ targetEbops: 1000, maxBeta: 1e-4, log: false, p: 1, i: 1 });
  assert.equal(p3.update(1e9), 1e-4);
  assert.throws(() => new BetaPid({ targetEbops: 0 }), /targetEbops must be > 0/);
});
