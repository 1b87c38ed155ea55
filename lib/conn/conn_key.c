/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Connection keys and IDs. The ID is SipHash-2-4 (libsodium's crypto_shorthash) of the
 * canonical key under a per-instance secret: an attacker who picks addresses and ports
 * cannot pick IDs, so cannot aim collisions at one bucket or one checkpoint slot.
 */
#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include <sodium.h>

#include "holdfast/fw_conn.h"

_Static_assert(crypto_shorthash_KEYBYTES == sizeof(struct fw_id_secret), "siphash key size");
_Static_assert(crypto_shorthash_BYTES == sizeof(uint64_t), "siphash output size");

int fw_key_make(struct fw_key *key, uint8_t family, uint8_t proto, const void *saddr,
		const void *daddr, uint16_t sport, uint16_t dport)
{
	const size_t alen = family == 4 ? 4 : 16;
	int c;

	memset(key, 0, sizeof(*key));
	key->family = family;
	key->proto = proto;
	c = memcmp(saddr, daddr, alen);
	if (c == 0)
		c = (int)sport - (int)dport; /* network order: any total order will do */
	if (c <= 0) {
		memcpy(key->addr[0], saddr, alen);
		memcpy(key->addr[1], daddr, alen);
		key->port[0] = sport;
		key->port[1] = dport;
		return 0;
	}
	memcpy(key->addr[0], daddr, alen);
	memcpy(key->addr[1], saddr, alen);
	key->port[0] = dport;
	key->port[1] = sport;
	return 1;
}

int fw_id_secret_init(struct fw_id_secret *s)
{
	if (getrandom(s, sizeof(*s), 0) != (ssize_t)sizeof(*s))
		return -errno;
	return 0;
}

uint64_t fw_conn_id(const struct fw_id_secret *s, const struct fw_key *key)
{
	uint64_t id;

	crypto_shorthash((unsigned char *)&id, (const unsigned char *)key, sizeof(*key),
			 (const unsigned char *)s);
	return id ? id : 1; /* 0 means "no connection" in records */
}
