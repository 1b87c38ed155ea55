/* SPDX-License-Identifier: BSD-3-Clause */
#include <stdarg.h>
#include <stdio.h>

#include <systemd/sd-daemon.h>

#include "fw_notify.h"

static void notify(const char *head, const char *fmt, va_list ap)
{
	char status[256];

	vsnprintf(status, sizeof(status), fmt, ap);
	/* A refused or absent socket is not the firewall's failure: nothing to do about it. */
	(void)sd_notifyf(0, "%sSTATUS=%s", head, status);
}

void fw_notify_ready(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	notify("READY=1\n", fmt, ap);
	va_end(ap);
}

void fw_notify_status(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	notify("", fmt, ap);
	va_end(ap);
}

void fw_notify_stopping(const char *why)
{
	(void)sd_notifyf(0, "STOPPING=1\nSTATUS=%s", why);
}
