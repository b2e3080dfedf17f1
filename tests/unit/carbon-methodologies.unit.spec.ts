import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Money } from '../../core-ledger';
// core-ledger/index.ts gains `export * from './carbon'` in the ingestion change; import from '../../core-ledger' then.
import {
  BEHAVIOUR_CLASSES,
  BEHAVIOUR_TYPES,
  creditsForGrams,
  isBehaviourType,
  METHODOLOGIES,
  methodologyByVersion,
  methodologyFor,
  methodologyForEndTime,
  methodologyTableProblems,
  reductionGramsFor,
  type MethodologyVersion,
} from '../../core-ledger';

function version(id: string): MethodologyVersion {
  const m = methodologyByVersion(id);
  if (!m) throw new Error(`no methodology version ${id}`);
  return m;
}

function gramsOf(id: string, quantity: string): string {
  const result = reductionGramsFor(version(id), quantity);
  if (!result.ok) throw new Error(`${id} refused ${quantity}: ${result.reason}`);
  return result.grams.toFixed();
}

describe('carbon methodologies: worked example per version (expected values computed by hand from the source)', () => {
  // [expected grams] = factor × quantity, floored; the arithmetic is written out in each row.
  const cases: ReadonlyArray<[version: string, quantity: string, grams: string, byHand: string]> = [
    ['walking@2021-wuhan', '7250', '145', 'source example: 7,250 steps × 0.02 g = 145 g'],
    ['walking@2021-wuhan', '10000', '200', '10,000 steps × 0.02 g = 200 g'],
    ['shared_bike@2023-wuhan', '2.5', '100', '2.5 km × 40 g/km = 100 g'],
    ['shared_bike@2024-shanghai', '3.5', '343', '3.5 km × 98 g/km = 343 g'],
    ['shared_bike@2025-wuhan', '3', '279', '3 km × 93.3 g/km = 279.9 g → 279 g'],
    ['bus@2023-wuhan', '1', '150', '1 ride × 150 g'],
    ['bus@2024-shanghai', '1', '422', '1 ride × 422 g'],
    ['bus@2025-wuhan', '1', '212', '1 ride × 212.5 g = 212.5 g → 212 g'],
    ['metro@2021-shenzhen', '10', '468', '10 km × 46.8 g/pkm = 468 g'],
    ['metro@2024-shanghai', '10', '970', '10 km × (130 − 33) g/km = 970 g'],
    ['metro@2025-wuhan', '10', '784', '10 km × 78.4 g/km = 784 g'],
    ['nev_driving@2023-wuhan', '24', '168', 'source example: 24 km × 7 g/km = 168 g'],
    ['paperless_bill@2016-antforest', '1', '262', '1 bill × 262 g'],
    ['e_ticket@2016-antforest', '2', '360', '2 tickets × 180 g'],
    ['own_bag@2023-wuhan', '1', '5', '1 visit × 5 g'],
    ['recycling@2021-platform', '2.5', '250', '2.5 kg × 100 g/kg (platform assumption) = 250 g'],
    ['tree_planting@2021-platform', '3', '3000', '3 trees × 1,000 g (platform assumption) = 3,000 g'],
  ];

  test.each(cases)('%s: %s → %s g (%s)', (id, quantity, grams) => {
    expect(gramsOf(id, quantity)).toBe(grams);
  });

  test('every version in the table has a worked example above', () => {
    const covered = new Set(cases.map(([id]) => id));
    expect(METHODOLOGIES.map((m) => m.version).filter((id) => !covered.has(id))).toEqual([]);
  });
});

describe('rounding: grams floor to the whole gram, credits floor to 0.01', () => {
  test('a fraction of a gram is floored, never rounded up', () => {
    expect(gramsOf('walking@2021-wuhan', '49')).toBe('0'); // 0.98 g
    expect(gramsOf('walking@2021-wuhan', '99')).toBe('1'); // 1.98 g
    expect(gramsOf('shared_bike@2025-wuhan', '0.999')).toBe('93'); // 93.2067 g
    expect(gramsOf('metro@2024-shanghai', '12.345')).toBe('1197'); // 97 × 12.345 = 1197.465 g
    expect(gramsOf('recycling@2021-platform', '0.009')).toBe('0'); // 0.9 g
  });

  test('the result is an integer Money', () => {
    const result = reductionGramsFor(version('metro@2025-wuhan'), '1.001');
    expect(result.ok && result.grams.isInteger()).toBe(true);
    expect(result.ok && result.grams.toFixed()).toBe('78'); // 78.4784 g
  });

  test('credits floor at 2 decimals', () => {
    expect(creditsForGrams(new Money(145), '1').toFixed(2)).toBe('145.00');
    expect(creditsForGrams(new Money(145), '0.01').toFixed(2)).toBe('1.45');
    expect(creditsForGrams(new Money(199), '0.001').toFixed(2)).toBe('0.19'); // 0.199
    expect(creditsForGrams(new Money(7), '0.333').toFixed(2)).toBe('2.33'); // 2.331
    expect(creditsForGrams(new Money(1), '0.009').toFixed(2)).toBe('0.00'); // 0.009
    expect(creditsForGrams(new Money(0), '1').toFixed(2)).toBe('0.00');
    expect(creditsForGrams(new Money(3), '0.5').decimalPlaces()).toBeLessThanOrEqual(2);
  });

  test('credits refuse bad grams and bad ratios as bugs', () => {
    expect(() => creditsForGrams(new Money('1.5'), '1')).toThrow(RangeError);
    expect(() => creditsForGrams(new Money(-1), '1')).toThrow(RangeError);
    for (const ratio of ['0', '-1', '1e-2', '', ' 1', '.5', 'abc']) {
      expect(() => creditsForGrams(new Money(10), ratio)).toThrow(RangeError);
    }
  });
});

describe('quantity refusals', () => {
  const bike = (): MethodologyVersion => version('shared_bike@2025-wuhan');

  test('malformed quantities are bad_quantity', () => {
    for (const q of ['', 'abc', '1e3', '+1', '.5', '1.', ' 1', '1,5', '0x10', 'NaN', 'Infinity', '1'.repeat(40)]) {
      expect(reductionGramsFor(bike(), q)).toEqual({ ok: false, reason: 'bad_quantity' });
    }
    expect(reductionGramsFor(bike(), 5 as unknown as string)).toEqual({ ok: false, reason: 'bad_quantity' });
  });

  test('more than 3 decimals is bad_quantity; trailing zeros are fine', () => {
    expect(reductionGramsFor(bike(), '1.0001')).toEqual({ ok: false, reason: 'bad_quantity' });
    expect(reductionGramsFor(bike(), '1.5000')).toMatchObject({ ok: true });
  });

  test('counted units take whole numbers only', () => {
    expect(reductionGramsFor(version('bus@2025-wuhan'), '0.5')).toEqual({ ok: false, reason: 'bad_quantity' });
    expect(reductionGramsFor(version('walking@2021-wuhan'), '100.5')).toEqual({ ok: false, reason: 'bad_quantity' });
    expect(reductionGramsFor(version('walking@2021-wuhan'), '100.000')).toMatchObject({ ok: true });
  });

  test('zero and negatives are not_positive', () => {
    for (const q of ['0', '0.000', '-1', '-0.5']) {
      expect(reductionGramsFor(bike(), q)).toEqual({ ok: false, reason: 'not_positive' });
    }
  });

  test('above the per-record maximum is refused, at the maximum accepted', () => {
    expect(reductionGramsFor(version('walking@2021-wuhan'), '100000')).toMatchObject({ ok: true });
    expect(reductionGramsFor(version('walking@2021-wuhan'), '100001')).toEqual({
      ok: false,
      reason: 'above_record_maximum',
    });
    expect(reductionGramsFor(bike(), '50.001')).toEqual({ ok: false, reason: 'above_record_maximum' });
    expect(reductionGramsFor(version('bus@2024-shanghai'), '2')).toEqual({
      ok: false,
      reason: 'above_record_maximum',
    });
  });

  test('a declared unit other than the version unit is unit_mismatch', () => {
    expect(reductionGramsFor(bike(), '3', 'ride')).toEqual({ ok: false, reason: 'unit_mismatch' });
    expect(reductionGramsFor(bike(), '3', 'km')).toMatchObject({ ok: true });
  });
});

describe('version selection', () => {
  test.each([
    ['shared_bike', '2023-05-31', undefined],
    ['shared_bike', '2023-06-01', 'shared_bike@2023-wuhan'],
    ['shared_bike', '2024-10-29', 'shared_bike@2023-wuhan'],
    ['shared_bike', '2024-10-30', 'shared_bike@2024-shanghai'],
    ['shared_bike', '2025-08-25', 'shared_bike@2024-shanghai'],
    ['shared_bike', '2025-08-26', 'shared_bike@2025-wuhan'],
    ['shared_bike', '2099-12-31', 'shared_bike@2025-wuhan'],
    ['bus', '2024-10-29', 'bus@2023-wuhan'],
    ['bus', '2024-10-30', 'bus@2024-shanghai'],
    ['bus', '2025-08-26', 'bus@2025-wuhan'],
    ['metro', '2021-12-16', undefined],
    ['metro', '2021-12-17', 'metro@2021-shenzhen'],
    ['metro', '2024-10-30', 'metro@2024-shanghai'],
    ['metro', '2025-08-25', 'metro@2024-shanghai'],
    ['metro', '2025-08-26', 'metro@2025-wuhan'],
    ['walking', '2021-07-31', undefined],
    ['walking', '2021-08-01', 'walking@2021-wuhan'],
    ['recycling', '2026-01-01', 'recycling@2021-platform'],
  ] as const)('%s on %s → %s', (behaviour, date, expected) => {
    expect(methodologyFor(behaviour, date)?.version).toBe(expected);
  });

  test('chosen by the business date of the end time in Asia/Shanghai', () => {
    // 2025-08-25T16:10Z is 00:10 on 2025-08-26 in Shanghai: the new version.
    expect(methodologyForEndTime('metro', new Date('2025-08-25T16:10:00Z'))?.version).toBe('metro@2025-wuhan');
    // 2025-08-25T15:59Z is 23:59 on 2025-08-25 in Shanghai: still the old one.
    expect(methodologyForEndTime('metro', new Date('2025-08-25T15:59:00Z'))?.version).toBe('metro@2024-shanghai');
  });

  test('a malformed date is a caller bug', () => {
    for (const date of ['2025-8-26', '2025-02-30', '20250826', '2025-08-26T00:00:00Z', '']) {
      expect(() => methodologyFor('bus', date)).toThrow(RangeError);
    }
  });

  test('isBehaviourType', () => {
    expect(isBehaviourType('walking')).toBe(true);
    expect(isBehaviourType('tree_planting')).toBe(true);
    for (const v of ['Walking', 'taxi', '', 1, null, undefined, {}]) expect(isBehaviourType(v)).toBe(false);
  });
});

describe('table invariants', () => {
  test('the table passes its own checks', () => {
    expect(methodologyTableProblems(METHODOLOGIES)).toEqual([]);
  });

  test('versions of one behaviour do not overlap (checked independently of the module check)', () => {
    for (const behaviour of BEHAVIOUR_TYPES) {
      const versions = METHODOLOGIES.filter((m) => m.behaviour === behaviour);
      for (const a of versions) {
        for (const b of versions) {
          if (a === b) continue;
          const aEnd = a.validTo ?? '9999-12-31';
          const bEnd = b.validTo ?? '9999-12-31';
          expect(a.validFrom < bEnd && b.validFrom < aEnd).toBe(false);
        }
      }
    }
  });

  test('every behaviour of the issue is present, in every class', () => {
    const issueBehaviours = [
      'walking',
      'shared_bike',
      'bus',
      'metro',
      'nev_driving',
      'paperless_bill',
      'e_ticket',
      'own_bag',
      'recycling',
      'tree_planting',
    ];
    const present = new Set(METHODOLOGIES.map((m) => m.behaviour as string));
    expect(issueBehaviours.filter((b) => !present.has(b))).toEqual([]);
    expect(new Set(METHODOLOGIES.map((m) => m.behaviourClass))).toEqual(new Set(BEHAVIOUR_CLASSES));
    expect(BEHAVIOUR_CLASSES).toHaveLength(4);
  });

  test('version ids are unique; every behaviour has a version open today and onward', () => {
    const ids = METHODOLOGIES.map((m) => m.version);
    expect(new Set(ids).size).toBe(ids.length);
    for (const behaviour of BEHAVIOUR_TYPES) {
      expect(METHODOLOGIES.filter((m) => m.behaviour === behaviour && m.validTo === null)).toHaveLength(1);
    }
  });

  test('every factor is a positive decimal string; baseline > project', () => {
    const positiveDecimal = /^(?:0|[1-9]\d*)(?:\.\d+)?$/;
    for (const m of METHODOLOGIES) {
      const factors =
        m.formula.kind === 'fixed_per_action'
          ? [m.formula.gramsPerAction]
          : [m.formula.baselineGramsPerUnit, m.formula.projectGramsPerUnit];
      for (const factor of factors) {
        expect(factor).toMatch(positiveDecimal);
        expect(new Money(factor).gt(0)).toBe(true);
      }
      if (m.formula.kind === 'factor_difference') {
        expect(new Money(m.formula.baselineGramsPerUnit).gt(new Money(m.formula.projectGramsPerUnit))).toBe(true);
      }
      expect(new Money(m.maxQuantityPerRecord).gt(0)).toBe(true);
    }
  });

  test('every version cites a source; platform assumptions say so plainly', () => {
    for (const m of METHODOLOGIES) {
      expect(m.source.length).toBeGreaterThan(20);
      if (m.status === 'assumption') expect(m.source).toMatch(/PLATFORM-DEFINED ASSUMPTION/);
      else expect(m.source).toMatch(/https?:\/\//);
    }
    expect(version('recycling@2021-platform').status).toBe('assumption');
    expect(version('tree_planting@2021-platform').status).toBe('assumption');
  });

  test('trips are the travel behaviours that have a start and an end', () => {
    const trips = new Set(METHODOLOGIES.filter((m) => m.isTrip).map((m) => m.behaviour));
    expect(trips).toEqual(new Set(['shared_bike', 'bus', 'metro', 'nev_driving']));
  });

  test('the table check catches overlaps, bad factors and baseline ≤ project', () => {
    const base = version('metro@2024-shanghai');
    const overlapping: MethodologyVersion = { ...base, version: 'metro@test-overlap', validFrom: '2025-01-01' };
    expect(methodologyTableProblems([...METHODOLOGIES, overlapping]).join()).toMatch(/overlaps/);
    const inverted: MethodologyVersion = {
      ...base,
      formula: { kind: 'factor_difference', baselineGramsPerUnit: '33', projectGramsPerUnit: '130' },
    };
    expect(methodologyTableProblems([inverted])).toEqual(['metro@2024-shanghai: baseline must exceed project']);
    const zero: MethodologyVersion = { ...base, formula: { kind: 'fixed_per_action', gramsPerAction: '0' } };
    expect(methodologyTableProblems([zero])).toEqual(['metro@2024-shanghai: gramsPerAction not a positive decimal']);
  });
});

describe('docs/carbon.md', () => {
  test('its table has a row for every version, with its dates, unit and factor', () => {
    const doc = readFileSync(join(__dirname, '../../docs/carbon.md'), 'utf8');
    const rows = doc.split('\n').filter((line) => line.startsWith('|'));
    for (const m of METHODOLOGIES) {
      const row = rows.find((line) => line.includes(`\`${m.version}\``));
      expect(row).toBeDefined();
      const cells = (row ?? '').split('|').map((cell) => cell.trim());
      const factor =
        m.formula.kind === 'fixed_per_action'
          ? m.formula.gramsPerAction
          : `${m.formula.baselineGramsPerUnit} − ${m.formula.projectGramsPerUnit}`;
      expect(cells).toEqual(
        expect.arrayContaining([m.behaviour, m.behaviourClass, m.validFrom, m.validTo ?? '—', m.unit]),
      );
      expect(row).toContain(factor);
    }
  });
});

describe('properties', () => {
  const byVersion = fc.constantFrom(...METHODOLOGIES);
  // A quantity in thousandths within the version's bound, integer for counted units.
  const quantityFor = (m: MethodologyVersion): fc.Arbitrary<string> => {
    const max = new Money(m.maxQuantityPerRecord);
    const counted = ['step', 'ride', 'bill', 'ticket', 'action', 'tree'].includes(m.unit);
    return counted
      ? fc.integer({ min: 1, max: max.toNumber() }).map(String)
      : fc
          .integer({ min: 1, max: max.times(1000).toNumber() })
          .map((thousandths) => new Money(thousandths).div(1000).toFixed());
  };

  test('grams are monotone non-decreasing in quantity', () => {
    fc.assert(
      fc.property(
        byVersion.chain((m) => fc.tuple(fc.constant(m), quantityFor(m), quantityFor(m))),
        ([m, a, b]) => {
          const [low, high] = new Money(a).lte(new Money(b)) ? [a, b] : [b, a];
          const gLow = reductionGramsFor(m, low);
          const gHigh = reductionGramsFor(m, high);
          if (!gLow.ok || !gHigh.ok) return false;
          return gLow.grams.lte(gHigh.grams) && gLow.grams.isInteger() && gLow.grams.gte(0);
        },
      ),
    );
  });

  test('grams never exceed the exact reduction by a gram; credits ≤ grams × ratio and within 0.01 of it', () => {
    const ratio = fc
      .integer({ min: 1, max: 100_000 })
      .map((tenThousandths) => new Money(tenThousandths).div(10_000).toFixed());
    fc.assert(
      fc.property(
        byVersion.chain((m) => fc.tuple(fc.constant(m), quantityFor(m))),
        ratio,
        ([m, q], creditsPerGram) => {
          const result = reductionGramsFor(m, q);
          if (!result.ok) return false;
          const credits = creditsForGrams(result.grams, creditsPerGram);
          const exactCredits = result.grams.times(new Money(creditsPerGram));
          return credits.lte(exactCredits) && exactCredits.minus(credits).lt(0.01) && credits.decimalPlaces() <= 2;
        },
      ),
    );
  });
});
