// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * failcall.so, an LD_PRELOAD shim for tests: with LB_FAIL_SOCKETPAIR=N in
 * the environment, the Nth socketpair() of the process fails with EMFILE
 * (as when its descriptors run out); every other call is the real one.
 * Built without the project's CFLAGS, so sanitizer builds can preload it.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

int socketpair(int domain, int type, int protocol, int sv[2])
{
	static int (*real)(int, int, int, int[2]);
	static long calls;
	const char *fail = getenv("LB_FAIL_SOCKETPAIR");

	if (!real)
		real = (int (*)(int, int, int, int[2]))dlsym(RTLD_NEXT, "socketpair");
	if (fail && ++calls == strtol(fail, NULL, 10)) {
		errno = EMFILE;
		return -1;
	}
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	return real(domain, type, protocol, sv);
}
