#pragma once
// CurveZMQ security for the stack (PROTOCOL.md "Security"), in one include.
//
//   keys.hpp              PublicKey, SecretKey, KeyPair; Z85 via libzmq
//   certificate.hpp       NAME.key / NAME.key_secret files (pyzmq and czmq format)
//   principal.hpp         Role and Principal, from a certificate's metadata
//   rules.hpp             the role table; admit() (handshake), authorize() (message)
//   keyring.hpp           a clients directory as principals by key; reload; views
//   keyring_watcher.hpp   reload on directory change (inotify) and on trigger (SIGHUP)
//   zap.hpp               the process's ZAP handler thread and its counts
//   curve_socket.hpp      CURVE server/client options; MessageAuthorizer
//   handshake_monitor.hpp handshake events of a socket (refused client, failure counts)
//   client.hpp            a client's settings and a connecting socket that recovers from a refusal
//
// How a service wires it with --security curve:
//  1. At start, before any socket binds (each step failing is a start-up
//     error): curve_available(); Keyring keyring(--curve-clients-dir) and
//     log_reload(keyring, keyring.first_load(), "start"); own keys with
//     load_key_pair(--curve-secret-file), WARN secret_file_mode_warning();
//     ZapHandler zap(ctx, keyring).
//  2. Every bound socket: make_curve_server(socket, zap, own.secret_key,
//     domain) then bind. Domains: heartbeats SUB hb, each group's events PUSH
//     events.<group>, acks PULL acks, control ROUTER control, the task-queue
//     API task-queue, the pool-manager API pool-manager.
//  3. Every receiving thread has a MessageAuthorizer for its socket's domain
//     and calls check(payload frame, op, subject) after decoding: heartbeat
//     (ops::kHeartbeat, runner_id), ack (ops::kAck, the ack's group), a
//     request (its op; lease/acquire/release: the request's runner_id;
//     complete/fail: the runner_id the task is leased to). A denial answers
//     {ok: false, error: "forbidden", detail} or drops a heartbeat or ack,
//     counts rmon_authz_denied_total{endpoint,op,reason=deny_reason_name()}
//     and WARNs (rate limited) with the principal's name.
//  4. KeyringWatcher watcher(keyring, ...) and SIGHUP -> watcher.trigger().
//  5. /metrics at scrape time: zap.counts() -> rmon_zap_requests_total
//     {domain,result}; keyring.size() -> rmon_keyring_keys;
//     keyring.reloads(outcome) -> rmon_keyring_reloads_total{result}; a
//     HandshakeMonitor per bound socket, polled in its loop ->
//     rmon_handshake_failures_total{endpoint,kind}.
// A service that is also a client (task-queue and pool-manager to the
// monitor), and every client tool, does as clients do:
//   load_client_keys(own .key_secret, server .key); make_curve_client(socket,
//   keys, linger); HandshakeMonitor before connect; on kAuthFailed log
//   not_enrolled_message(keys.own.public_key), destroy the monitor and the
//   socket and recreate both with backoff (libzmq never retries after a 400).

#include "rmon/security/certificate.hpp"
#include "rmon/security/client.hpp"
#include "rmon/security/curve_socket.hpp"
#include "rmon/security/handshake_monitor.hpp"
#include "rmon/security/keyring.hpp"
#include "rmon/security/keyring_watcher.hpp"
#include "rmon/security/keys.hpp"
#include "rmon/security/principal.hpp"
#include "rmon/security/rules.hpp"
#include "rmon/security/zap.hpp"
