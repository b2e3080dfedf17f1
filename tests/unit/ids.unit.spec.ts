import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { CARBONPAY_NAMESPACE, eventIdsFor, msOfUuidV7, transferIdFor, uuidV5, uuidV7 } from '../../core-ledger';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-([0-9a-f])[0-9a-f]{3}-([89ab])[0-9a-f]{3}-[0-9a-f]{12}$/;

describe('ids', () => {
  it('uuidV5 is the RFC 4122 name-based id (as uuid.uuid5 of Python computes it in the DNS namespace)', () => {
    expect(uuidV5('www.example.com', '6ba7b810-9dad-11d1-80b4-00c04fd430c8')).toBe(
      '2ed6657d-e927-568b-95e1-2665a8aea6a2',
    );
    // Stored transfer ids derive from it: pinned, and the same through the namespace's bytes read once as read each time.
    expect(transferIdFor('client', 'key')).toBe('76f21f43-a965-58ed-9b83-60a75ef3210d');
    expect(uuidV5('transfer|client|key', CARBONPAY_NAMESPACE.toUpperCase())).toBe(transferIdFor('client', 'key'));
    expect(transferIdFor('client', 'key')).not.toBe(transferIdFor('client', 'key2'));
  });

  it('uuidV5 of any name, short or past the one-shot scratch, is SHA-1 over namespace bytes and UTF-8 name', () => {
    const namespaceBytes = Buffer.from(CARBONPAY_NAMESPACE.replace(/-/g, ''), 'hex');
    const name = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 60 }),
      fc.string({ unit: 'binary', minLength: 250, maxLength: 400 }),
      fc.string({ unit: 'grapheme-ascii', minLength: 990, maxLength: 1_100 }),
    );
    fc.assert(
      fc.property(name, (text) => {
        const bytes = createHash('sha1').update(namespaceBytes).update(text, 'utf8').digest();
        bytes[6] = (bytes[6]! & 0x0f) | 0x50;
        bytes[8] = (bytes[8]! & 0x3f) | 0x80;
        const hex = bytes.subarray(0, 16).toString('hex');
        expect(uuidV5(text)).toBe(
          `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`,
        );
      }),
      { numRuns: 300 },
    );
  });

  it('eventIdsFor gives distinct version-8 ids, the same for the same decision', () => {
    const ids = eventIdsFor('decision', 3);
    expect(new Set(ids).size).toBe(3);
    expect(eventIdsFor('decision', 3)).toEqual(ids);
    for (const id of ids) expect(UUID.exec(id)?.[1]).toBe('8');
  });

  it('eventIdsFor is the SHA-256 of the decision key, version and variant set, the index in the last two bytes', () => {
    // Pinned: stored event ids derive from it.
    expect(eventIdsFor('decision', 2)).toEqual([
      '86ae35d5-8a6a-83b5-b42d-f94ef9d70000',
      '86ae35d5-8a6a-83b5-b42d-f94ef9d70001',
    ]);
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 80 }), fc.integer({ min: 0, max: 300 }), (key, count) => {
        const bytes = createHash('sha256').update(key, 'utf8').digest();
        bytes[6] = (bytes[6]! & 0x0f) | 0x80;
        bytes[8] = (bytes[8]! & 0x3f) | 0x80;
        const ids = eventIdsFor(key, count);
        expect(ids).toHaveLength(count);
        ids.forEach((id, index) => {
          bytes[14] = index >> 8;
          bytes[15] = index & 0xff;
          const hex = bytes.subarray(0, 16).toString('hex');
          expect(id).toBe(
            `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`,
          );
        });
      }),
      { numRuns: 200 },
    );
  });

  it('uuidV7 carries its millisecond in the first 48 bits, version 7 and the RFC variant', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 48 - 1 }), (ms) => {
        const id = uuidV7(ms);
        const match = UUID.exec(id);
        expect(match?.[1]).toBe('7');
        expect(match?.[2]).toMatch(/[89ab]/);
        expect(parseInt(id.replace(/-/g, '').slice(0, 12), 16)).toBe(ms);
        expect(msOfUuidV7(id)).toBe(ms);
      }),
    );
  });

  it('uuidV7 sorts by time across milliseconds, and never repeats within one', () => {
    const earlier = Array.from({ length: 1_000 }, () => uuidV7(1_700_000_000_000));
    const later = Array.from({ length: 1_000 }, () => uuidV7(1_700_000_000_001));
    expect(new Set([...earlier, ...later]).size).toBe(2_000);
    for (const a of earlier) expect(a < later[0]!).toBe(true);
  });

  it('msOfUuidV7 reads the time of v7 ids only', () => {
    expect(msOfUuidV7('01a24d7c-4e48-720d-86f0-4313f1f216d8')).toBe(0x01a24d7c4e48);
    expect(msOfUuidV7(uuidV5('name'))).toBeUndefined();
    expect(msOfUuidV7('01A24D7C-4E48-720D-86F0-4313F1F216D8')).toBeUndefined();
    expect(msOfUuidV7('01a24d7c-4e48-720d-86f0-4313f1f216d8 ')).toBeUndefined();
    expect(msOfUuidV7('not an id')).toBeUndefined();
  });

  it('uuidV7 refuses a time it cannot hold', () => {
    expect(() => uuidV7(-1)).toThrow(RangeError);
    expect(() => uuidV7(2 ** 48)).toThrow(RangeError);
    expect(() => uuidV7(1.5)).toThrow(RangeError);
  });
});
