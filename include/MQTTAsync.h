/*
 * MQTTAsync.h - Eclipse Paho C header name provided by mqttsync, so that programs written for
 * Paho's MQTTAsync API build unchanged with -I <mqttsync include dir>. Everything is
 * declared in mqttsync.h. Do not mix with Paho's own headers: mqttsync.h stops with an
 * #error if a Paho header was included first, and defines Paho's include guards so that a
 * Paho header included later is skipped.
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#ifndef MQTTSYNC_COMPAT_MQTTASYNC_H
#define MQTTSYNC_COMPAT_MQTTASYNC_H
#include "mqttsync.h"
#endif
