import { IpAllowList } from '../../security';

test('addresses and CIDR ranges, IPv4, IPv6 and IPv4-mapped; bad entries refused', () => {
  const list = IpAllowList.from(['10.1.0.0/16', '192.168.1.7', '2001:db8::/32']);
  expect(['10.1.2.3', '::ffff:10.1.200.1', '192.168.1.7', '2001:db8::1'].map((a) => list.allows(a))).toEqual([
    true,
    true,
    true,
    true,
  ]);
  expect(['10.2.0.1', '192.168.1.8', '2001:db9::1', '', 'not-an-ip'].map((a) => list.allows(a))).toEqual([
    false,
    false,
    false,
    false,
    false,
  ]);
  for (const bad of ['10.0.0.0/33', '10.0.0.300', 'host.example', '10.0.0.0/8/1', '::/129'])
    expect(() => IpAllowList.from([bad])).toThrow(RangeError);
});
