/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What systemd is told (sd_notify, Type=notify units): READY=1 once the firewall forwards
 * -- its connections restored and its ports started -- or, for a standby, once it follows
 * the primary; STATUS= lines saying which; STOPPING=1 at shutdown. Outside systemd
 * (NOTIFY_SOCKET unset) every call does nothing.
 */
#ifndef HOLDFAST_FW_NOTIFY_H
#define HOLDFAST_FW_NOTIFY_H

/** READY=1 with STATUS= set to the formatted text. */
void fw_notify_ready(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/** STATUS= only. */
void fw_notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/** STOPPING=1, with the reason as STATUS=. */
void fw_notify_stopping(const char *why);

#endif
