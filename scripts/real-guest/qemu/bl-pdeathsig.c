/*
 * bl-pdeathsig: run a command that is killed (SIGKILL) when the process that
 * started bl-pdeathsig dies, so a QEMU never outlives the balloonlab that runs it.
 *
 *   bl-pdeathsig COMMAND [ARG...]
 *
 * prctl(PR_SET_PDEATHSIG, SIGKILL), then a check that the parent is still the one
 * we started under (if it died between fork and prctl we were already reparented
 * and the signal would never come: exit 125), then execvp(COMMAND, ARGS). The
 * death signal survives execve (the command is not set-uid).
 *
 * Note: the kernel sends the signal when the parent THREAD exits. Spawn from a
 * thread that lives as long as the parent process (Node's child_process does:
 * libuv forks from the event-loop thread).
 *
 * Exit status: the command's (exec replaces this process); 125 on a usage error
 * or a dead parent, 126/127 when the command cannot be executed / found.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	pid_t parent = getppid();

	if (argc < 2 || strcmp(argv[1], "--help") == 0) {
		fprintf(stderr, "usage: bl-pdeathsig COMMAND [ARG...]\n");
		return 125;
	}
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
		fprintf(stderr, "bl-pdeathsig: prctl(PR_SET_PDEATHSIG): %s\n", strerror(errno));
		return 125;
	}
	if (getppid() != parent || parent == 1) {
		fprintf(stderr, "bl-pdeathsig: parent already gone\n");
		return 125;
	}
	execvp(argv[1], argv + 1);
	fprintf(stderr, "bl-pdeathsig: %s: %s\n", argv[1], strerror(errno));
	return errno == ENOENT ? 127 : 126;
}
