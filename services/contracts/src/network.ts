/**
 * Addresses that are not the public internet: where a customer's webhook must never lead (the
 * pod's own loopback, the cluster's private networks, the cloud's metadata service at
 * 169.254.169.254 or fd00:ec2::254). The chart's webhook egress excepts the IPv4 ones; the
 * notification service refuses a webhook that resolves into any of them (an IPv4-mapped IPv6
 * address is judged by its IPv4 address).
 */
export const NON_PUBLIC_IPV4 = [
  '0.0.0.0/8', // "this network"
  '10.0.0.0/8', // private
  '100.64.0.0/10', // carrier-grade NAT
  '127.0.0.0/8', // loopback
  '169.254.0.0/16', // link-local, cloud metadata
  '172.16.0.0/12', // private
  '192.0.0.0/24', // IETF protocol assignments
  '192.0.2.0/24', // documentation
  '192.168.0.0/16', // private
  '198.18.0.0/15', // benchmarking
  '198.51.100.0/24', // documentation
  '203.0.113.0/24', // documentation
  '224.0.0.0/4', // multicast
  '240.0.0.0/4', // reserved, broadcast
] as const;

export const NON_PUBLIC_IPV6 = [
  '::/128', // unspecified
  '::1/128', // loopback
  '64:ff9b::/96', // NAT64: may lead to any IPv4 address
  '100::/64', // discard
  '2001:db8::/32', // documentation
  'fc00::/7', // unique local, cloud metadata
  'fe80::/10', // link-local
  'ff00::/8', // multicast
] as const;
