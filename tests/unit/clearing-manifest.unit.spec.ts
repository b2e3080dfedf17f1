import { parseSm3Manifest, sm3Hex, verifySm3Manifest, writeSm3Manifest } from '../../clearing';

const FILES = [
  { name: 'wechat_20240321.csv', bytes: Buffer.from('交易时间,微信订单号\n', 'utf8') },
  { name: 'clearing-report-2024-03-21.csv', bytes: Buffer.from('business_date,merchant_id\n', 'utf8') },
  { name: 'empty.txt', bytes: Buffer.alloc(0) },
];

describe('SM3 manifest', () => {
  test('SM3 is the GB/T 32905 test vector for "abc"', () => {
    expect(sm3Hex(Buffer.from('abc'))).toBe('66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0');
  });

  test('lines are "<sm3>  <bytes>  <name>", sorted by name, and the manifest is deterministic', () => {
    const manifest = writeSm3Manifest(FILES);
    const lines = manifest.toString('utf8').split('\n');
    expect(lines.pop()).toBe('');
    expect(lines.map((l) => l.split('  ').slice(1))).toEqual([
      ['26', 'clearing-report-2024-03-21.csv'],
      ['0', 'empty.txt'],
      ['29', 'wechat_20240321.csv'], // 9 CJK characters × 3 bytes + ',' + LF,
    ]);
    expect(lines[2]!.startsWith(`${sm3Hex(FILES[0]!.bytes)}  `)).toBe(true);
    expect(writeSm3Manifest([...FILES].reverse()).equals(manifest)).toBe(true);
    expect(parseSm3Manifest(manifest).problems).toEqual([]);
  });

  test('verify accepts the files as written and detects a one-byte change', () => {
    const manifest = writeSm3Manifest(FILES);
    expect(verifySm3Manifest(manifest, FILES)).toEqual({ ok: true, problems: [] });
    const changed = Buffer.from(FILES[1]!.bytes);
    changed[0] = changed[0]! ^ 0x01;
    const tampered = [FILES[0]!, { name: FILES[1]!.name, bytes: changed }, FILES[2]!];
    expect(verifySm3Manifest(manifest, tampered)).toEqual({
      ok: false,
      problems: [{ kind: 'hash_mismatch', name: 'clearing-report-2024-03-21.csv' }],
    });
  });

  test('verify reports size changes, missing and unlisted files, and malformed lines', () => {
    const manifest = Buffer.concat([writeSm3Manifest(FILES), Buffer.from('not a manifest line\n')]);
    const files = [
      { name: FILES[0]!.name, bytes: Buffer.concat([FILES[0]!.bytes, Buffer.from('x')]) },
      FILES[2]!,
      { name: 'extra.csv', bytes: Buffer.from('x') },
    ];
    expect(verifySm3Manifest(manifest, files).problems).toEqual([
      { kind: 'malformed_line', line: 4 },
      { kind: 'missing_file', name: 'clearing-report-2024-03-21.csv' },
      { kind: 'size_mismatch', name: 'wechat_20240321.csv', expected: 29, actual: 30 },
      { kind: 'unlisted_file', name: 'extra.csv' },
    ]);
  });

  test('names that would break the line format are refused', () => {
    expect(() => writeSm3Manifest([{ name: 'a\nb', bytes: Buffer.alloc(0) }])).toThrow(RangeError);
    expect(() => writeSm3Manifest([{ name: 'dir/a', bytes: Buffer.alloc(0) }])).toThrow(RangeError);
    expect(() => writeSm3Manifest([FILES[0]!, FILES[0]!])).toThrow(/twice/);
  });
});
