import { BlockList, isIP } from 'node:net';

/** Addresses a caller may come from: single addresses and CIDR ranges, IPv4 and IPv6 (IPv4-mapped IPv6 as IPv4). */
export class IpAllowList {
  private constructor(
    private readonly list: BlockList,
    readonly entries: readonly string[],
  ) {}

  static from(entries: readonly string[]): IpAllowList {
    const list = new BlockList();
    for (const entry of entries) {
      const [address, prefixText, extra] = entry.split('/');
      const family = address === undefined ? 0 : isIP(address);
      if (family === 0 || extra !== undefined)
        throw new RangeError(`not an IP address or CIDR range: ${JSON.stringify(entry)}`);
      const type = family === 4 ? 'ipv4' : 'ipv6';
      if (prefixText === undefined) {
        list.addAddress(address!, type);
        continue;
      }
      const prefix = Number(prefixText);
      if (!/^\d{1,3}$/.test(prefixText) || prefix > (family === 4 ? 32 : 128))
        throw new RangeError(`bad prefix length in ${JSON.stringify(entry)}`);
      list.addSubnet(address!, prefix, type);
    }
    return new IpAllowList(list, [...entries]);
  }

  allows(source: string): boolean {
    const address = source.startsWith('::ffff:') && isIP(source.slice(7)) === 4 ? source.slice(7) : source;
    const family = isIP(address);
    return family !== 0 && this.list.check(address, family === 4 ? 'ipv4' : 'ipv6');
  }
}
