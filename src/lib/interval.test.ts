import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { currentInterval, describeInterval, parseRepeatingInterval } from './interval.ts'

const iso = (s: string) => new Date(s)

test('parses the three repeating-interval forms and rejects garbage', () => {
  assert.deepEqual(parseRepeatingInterval('R12/2022-08-24T14:15:22Z/P1M')?.repetitions, 12)
  assert.ok(parseRepeatingInterval('R/2017-03-01T13:00:00Z/2018-05-11T15:30:00Z'))
  assert.ok(parseRepeatingInterval('R-1/P1Y2M10DT2H30M/2022-05-11T15:30:00Z'))
  for (const bad of [
    '',
    'P1M',
    'R/P1M',
    'R0/2022-01-01T00:00:00Z/P1M',
    'R/2022-01-01/P1M',
    'R/2022-01-01T00:00:00Z/P',
    'R/2022-01-01T00:00:00Z/PT',
    'X/2022-01-01T00:00:00Z/P1M',
    'R/2022-02-01T00:00:00Z/2022-01-01T00:00:00Z',
    'R/2022-01-01T00:00:00Z/P1M/x',
  ]) {
    assert.equal(parseRepeatingInterval(bad), undefined, bad)
  }
})

test('current interval: forward monthly, clamped at month end, bounded repetitions', () => {
  const ri = parseRepeatingInterval('R3/2024-01-31T00:00:00Z/P1M')!
  assert.equal(currentInterval(ri, iso('2024-01-30T00:00:00Z')), undefined)
  assert.deepEqual(currentInterval(ri, iso('2024-02-15T00:00:00Z')), {
    start: iso('2024-01-31T00:00:00Z'),
    end: iso('2024-02-29T00:00:00Z'),
  })
  assert.deepEqual(currentInterval(ri, iso('2024-03-01T00:00:00Z')), {
    start: iso('2024-02-29T00:00:00Z'),
    end: iso('2024-03-31T00:00:00Z'),
  })
  assert.equal(currentInterval(ri, iso('2024-04-30T00:00:00Z')), undefined)
})

test('current interval: backward from an end, and start/end pairs', () => {
  const back = parseRepeatingInterval('R/P1D/2024-01-10T00:00:00Z')!
  assert.deepEqual(currentInterval(back, iso('2024-01-05T12:00:00Z')), {
    start: iso('2024-01-05T00:00:00Z'),
    end: iso('2024-01-06T00:00:00Z'),
  })
  assert.equal(currentInterval(back, iso('2024-01-10T00:00:00Z')), undefined)
  const pair = parseRepeatingInterval('R2/2024-01-01T00:00:00Z/2024-01-01T06:00:00Z')!
  assert.deepEqual(currentInterval(pair, iso('2024-01-01T07:00:00Z')), {
    start: iso('2024-01-01T06:00:00Z'),
    end: iso('2024-01-01T12:00:00Z'),
  })
  assert.equal(currentInterval(pair, iso('2024-01-01T12:00:00Z')), undefined)
})

test('the current interval always contains now and has the expected length', () => {
  fc.assert(
    fc.property(
      fc.date({
        min: iso('2000-01-01T00:00:00Z'),
        max: iso('2040-01-01T00:00:00Z'),
        noInvalidDate: true,
      }),
      fc.constantFrom('P1D', 'P1W', 'PT1H', 'P1M', 'P1Y', 'P1M15D', 'PT90M'),
      (now, dur) => {
        const ri = parseRepeatingInterval(`R/2000-01-01T00:00:00Z/${dur}`)!
        const cur = currentInterval(ri, now)!
        assert.ok(cur.start.getTime() <= now.getTime() && now.getTime() < cur.end.getTime())
      },
    ),
  )
})

test('describes intervals in words', () => {
  assert.equal(
    describeInterval(parseRepeatingInterval('R12/2022-08-24T14:15:22Z/P1M')!),
    'every month, 12 times, starting 24 Aug 2022 14:15 UTC',
  )
  assert.equal(
    describeInterval(parseRepeatingInterval('R/2022-08-24T00:00:00Z/P2DT3H')!),
    'every 2 days 3 hours, starting 24 Aug 2022 00:00 UTC',
  )
})
