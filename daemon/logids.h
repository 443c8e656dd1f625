/*
 * logids.h - the journal MESSAGE_IDs of the events an operator alerts on.
 *
 * Each is a random 128-bit id, generated once and never changed or
 * reused (systemd's journal-fields(7): MESSAGE_ID "should be a 128-bit
 * identifier formatted as a lower-case hexadecimal string"), so that
 * `journalctl MESSAGE_ID=<id>` finds one kind of event across versions.
 * The same list, with what each event means, is in docs/logging.md; keep
 * the two in step.  An event may be logged by any of vigild's processes:
 * VIGIL_PROCESS= says which.
 */
#ifndef VIGIL_LOGIDS_H
#define VIGIL_LOGIDS_H

/* vigild is sampling: BPF loaded, workers confined (VIGIL_HZ=) */
#define LOG_ID_STARTED "8edaba06a97147e2a1eff1ddc211b083"
/* a policy was applied: a --policy reload, or a signed one from the control plane (VIGIL_SERIAL=) */
#define LOG_ID_POLICY_APPLIED "6b62eba34a014522a677a1921f780f0b"
/* a policy was refused (invalid, bad signature, serial not newer); the one in force stays */
#define LOG_ID_POLICY_REFUSED "7efbacab9f154c67b06621d0cadf20db"
/* a tenant is over its budget even at its lowest frequency (VIGIL_TENANT=, VIGIL_HZ=) */
#define LOG_ID_BUDGET_UNREACHABLE "2c185f60c2c9417ebe72fe635437cc94"
/* a worker was killed or died: protocol breach, seccomp (SIGSYS), signal (VIGIL_WORKER=) */
#define LOG_ID_WORKER_KILLED "81ad2bf4ad8946778948be33ec4a2ce0"
/* the BPF object or its signature was refused: vigild does not start */
#define LOG_ID_BPF_REFUSED "d902e12140984472b6e99c15a2658f1d"
/* pushing profiles to the export target fails (retrying, or refused for good) */
#define LOG_ID_EXPORT_FAILING "cc09157962134cefb300d8db58fc35a8"
/* the spool is past its bound: the oldest profiles are dropped */
#define LOG_ID_SPOOL_DROPPING "8a3ff329647b4e29a1349b28bd4d594e"
/* a worker stopped making progress: the watchdog is no longer petted (VIGIL_WORKER=) */
#define LOG_ID_WORKER_STALLED "f77b78700b0e4ae3995a684f89a79269"

#endif
