# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The rollout record and the rollout lock of one service, kept as files in a state directory.

Files in ``state_dir`` (created with mode 0700; files are 0600):

* ``<service>.json``: the record, one JSON document (see :func:`new_record` for the schema), replaced
  atomically on every change (temporary file in the same directory, ``fsync``, ``rename``, ``fsync`` of the
  directory), so a reader or a crash never sees half a record;
* ``<service>.lock``: present while a run holds the rollout lock; JSON with the holder's run id, process id,
  host, boot id, process start time and since when it holds the lock;
* ``.<service>.mutex``: an ``flock`` held for the few milliseconds of one operation, so that two operations
  (two ansible-playbook runs calling ``begin`` at the same moment) never interleave their read-modify-write.

The rollout lock outlives the module process: ``begin`` takes it for a *run* (one ansible-playbook process,
identified by a run id), later operations of the run pass that run id, ``finish`` releases it. A lock whose
holder is gone is stale and is taken over with a warning: the holder ran on this host (same host name, same
boot id) and its process no longer exists or is another process now (start time differs), or the host was
rebooted since. A holder on another host cannot be checked from here; its lock counts as live unless it was
not refreshed for ``stale_after`` seconds (when that is set) or the caller passes ``break_lock``.

Operations: :func:`begin`, :func:`record_step`, :func:`add_event`, :func:`finish`, :func:`read`. Each returns a
dict (``changed``, ``record``, ``before``, ``lock``, ``run_id``, ``message``, ``warnings``, ...) and writes
nothing with ``check_mode=True``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import calendar
import contextlib
import copy
import errno
import fcntl
import json
import os
import re
import socket
import time
import uuid

from ansible_collections.canary.release.plugins.module_utils.durable_files import fsync_directory, replace_file

SCHEMA_VERSION = 1
STATUSES = ('running', 'paused', 'promoted', 'rolled_back', 'aborted')
UNFINISHED = ('running', 'paused')
FINISHED = ('promoted', 'rolled_back', 'aborted')
STEP_STATUSES = UNFINISHED
FINISH_STATUSES = FINISHED + ('paused',)
# Step verdicts (``steps[].verdict``). The rollout role records them; any other string is kept as given.
#   None                the step began: its weight is applied and it is being watched
#   pass                the judge passed and the step held for its pause                            (complete)
#   watched             the step held for its whole pause without a failure, every metric reporting
#                       data, while the judge was still undecided; or a step without analysis        (complete)
#   approved            a human approved the step (after a hold or at an approval gate)              (complete)
#   skipped             the step was not run                                                         (complete)
#   continue            the judge is still undecided (the step is not done)
#   awaiting_approval   the step is done but its approval gate waits for a human
#   inconclusive        the analysis deadline came undecided or without data: held for a human
#   fail                the judge failed the canary: rolled back
#   rejected            a human rejected the step: rolled back
# A step whose verdict is one of these is done: a resumed rollout continues with the next step.
COMPLETE_VERDICTS = ('pass', 'watched', 'approved', 'skipped')
HOLD_VERDICTS = ('awaiting_approval', 'inconclusive')
MAX_EVENTS = 1000
DEFAULT_MUTEX_TIMEOUT = 30.0
STATE_DIR_NAME = 'canary-release'
SERVICE_PATTERN = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$')
TIME_FORMAT = '%Y-%m-%dT%H:%M:%SZ'
# Executables whose process is "the run": the outermost one among the module's ancestors holds the lock.
CONTROLLER_NAMES = ('ansible-playbook', 'ansible', 'ansible-console')
OWNER_KEYS = ('pid', 'host', 'boot_id', 'pid_start')


class StateError(Exception):
    """The operation cannot be done; nothing was written."""


class LockHeldError(StateError):
    """Another live run holds the rollout lock. ``holder`` is its lock information."""

    def __init__(self, message, holder):
        super(LockHeldError, self).__init__(message)
        self.holder = holder


class VersionConflictError(StateError):
    """A different version is unfinished. ``record`` is the unfinished record."""

    def __init__(self, message, record):
        super(VersionConflictError, self).__init__(message)
        self.record = record


# --- time ----------------------------------------------------------------------------------------------------

def format_time(epoch):
    return time.strftime(TIME_FORMAT, time.gmtime(epoch))


def parse_time(text):
    """Seconds since the epoch for a time written by :func:`format_time`; None when unreadable."""
    try:
        return float(calendar.timegm(time.strptime(text, TIME_FORMAT)))
    except (TypeError, ValueError):
        return None


# --- the state directory and its files --------------------------------------------------------------------------

def default_state_dir(environ=None):
    """``$XDG_STATE_HOME/canary-release``, or ``~/.local/state/canary-release`` of the user running this."""
    environ = os.environ if environ is None else environ
    base = environ.get('XDG_STATE_HOME') or os.path.join(os.path.expanduser('~'), '.local', 'state')
    return os.path.join(base, STATE_DIR_NAME)


def validate_service(service):
    if not isinstance(service, str) or not SERVICE_PATTERN.match(service):
        raise StateError('service %r is not a valid service name: use 1 to 128 letters, digits and . _ @ + -, '
                         'starting with a letter or digit' % (service,))
    return service


def validate_version(version, what='version'):
    if not isinstance(version, str) or not version.strip() or len(version) > 256 or '\n' in version or '\r' in version:
        raise StateError('%s %r must be a non-empty string of one line, at most 256 characters' % (what, version))
    return version


def atomic_write_json(path, document):
    """Replace ``path`` with ``document`` as JSON: temporary file beside it, fsync, rename, fsync the directory.

    The document is serialised before anything is created, so an unserialisable document leaves no trace.
    """
    data = (json.dumps(document, indent=2, sort_keys=False, allow_nan=False) + '\n').encode('utf-8')
    replace_file(path, data, 0o600)
    fsync_directory(os.path.dirname(path))


def read_json(path):
    """The JSON document in ``path``, or None when the file does not exist."""
    try:
        with open(path, 'rb') as handle:
            data = handle.read()
    except (IOError, OSError) as error:
        if error.errno == errno.ENOENT:
            return None
        raise StateError('cannot read %s: %s' % (path, error.strerror))
    try:
        document = json.loads(data.decode('utf-8'))
    except ValueError as error:
        raise StateError('%s is not valid JSON (%s); move it away to start over' % (path, error))
    if not isinstance(document, dict):
        raise StateError('%s does not hold a JSON object; move it away to start over' % path)
    return document


class StateFiles(object):
    """The files of one service in one state directory."""

    def __init__(self, state_dir, service, mutex_timeout=DEFAULT_MUTEX_TIMEOUT):
        self.state_dir = os.path.abspath(os.path.expanduser(state_dir or default_state_dir()))
        self.service = validate_service(service)
        self.record_path = os.path.join(self.state_dir, '%s.json' % service)
        self.lock_path = os.path.join(self.state_dir, '%s.lock' % service)
        self.mutex_path = os.path.join(self.state_dir, '.%s.mutex' % service)
        self.mutex_timeout = mutex_timeout

    def read_record(self):
        record = read_json(self.record_path)
        if record is None:
            return None
        if record.get('service') != self.service:
            raise StateError('%s holds the record of service %r, not %r' % (self.record_path, record.get('service'),
                                                                            self.service))
        if not isinstance(record.get('schema'), int) or record['schema'] > SCHEMA_VERSION:
            raise StateError('%s has record schema %r; this canary.release reads schema %d or older'
                             % (self.record_path, record.get('schema'), SCHEMA_VERSION))
        return record

    def read_lock(self):
        return read_json(self.lock_path)

    def write_record(self, record):
        atomic_write_json(self.record_path, record)

    def write_lock(self, lock):
        atomic_write_json(self.lock_path, lock)

    def remove_lock(self):
        try:
            os.unlink(self.lock_path)
        except OSError as error:
            if error.errno != errno.ENOENT:
                raise StateError('cannot remove %s: %s' % (self.lock_path, error.strerror))
        fsync_directory(self.state_dir)

    def ensure_directory(self):
        try:
            os.makedirs(self.state_dir, 0o700)
        except OSError as error:
            if error.errno != errno.EEXIST or not os.path.isdir(self.state_dir):
                raise StateError('cannot create the state directory %s: %s' % (self.state_dir, error.strerror))

    @contextlib.contextmanager
    def mutex(self, check_mode=False):
        """Serialise one operation against every other on this service. Check mode reads without it."""
        if check_mode:
            yield
            return
        self.ensure_directory()
        try:
            fd = os.open(self.mutex_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as error:
            raise StateError('cannot open %s: %s' % (self.mutex_path, error.strerror))
        try:
            deadline = time.monotonic() + self.mutex_timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except (IOError, OSError) as error:
                    if error.errno not in (errno.EAGAIN, errno.EACCES):
                        raise StateError('cannot lock %s: %s' % (self.mutex_path, error.strerror))
                    if time.monotonic() >= deadline:
                        raise StateError('%s stayed locked for %s seconds' % (self.mutex_path, self.mutex_timeout))
                    time.sleep(0.02)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


# --- processes and hosts --------------------------------------------------------------------------------------

def boot_id():
    try:
        with open('/proc/sys/kernel/random/boot_id') as handle:
            return handle.read().strip() or None
    except (IOError, OSError):
        return None


def _proc_stat(pid):
    """(state, ppid, starttime) of a process from /proc, or None."""
    try:
        with open('/proc/%d/stat' % pid, 'rb') as handle:
            stat = handle.read()
    except (IOError, OSError):
        return None
    # The command name is in parentheses and may contain spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(b')') + 2:].split()
    try:
        return fields[0].decode('ascii', 'replace'), int(fields[1]), fields[19].decode('ascii')
    except (IndexError, ValueError):
        return None


def process_start(pid):
    """The start time of a process (clock ticks since boot, as a string), or None when unknown."""
    stat = _proc_stat(pid)
    return stat[2] if stat else None


def _cmdline(pid):
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as handle:
            return [part.decode('utf-8', 'replace') for part in handle.read().split(b'\0') if part]
    except (IOError, OSError):
        return []


def _is_controller(argv):
    for part in argv[:2]:
        name = os.path.basename(part)
        if name in CONTROLLER_NAMES or name.startswith('ansible-playbook'):
            return True
    return False


def find_controller_pid(start=None, max_hops=64):
    """The outermost ansible-playbook (or ansible) process among the ancestors of ``start`` (default: this one).

    Forked worker processes carry the same command line as their parent, so the outermost one is the run itself.
    None when there is none (the module runs on a remote host, or /proc is not available).
    """
    pid = os.getpid() if start is None else start
    found = None
    for dummy in range(max_hops):
        if pid <= 1:
            break
        if _is_controller(_cmdline(pid)):
            found = pid
        stat = _proc_stat(pid)
        if stat is None:
            break
        pid = stat[1]
    return found


def local_identity():
    """This host: its name and boot id."""
    return {'host': socket.gethostname(), 'boot_id': boot_id()}


def current_owner(pid=None):
    """Who takes the lock: the run's process (``pid``, default the ansible-playbook ancestor), host and boot."""
    if pid is None:
        pid = find_controller_pid()
    owner = local_identity()
    owner['pid'] = pid
    owner['pid_start'] = process_start(pid) if pid else None
    return owner


def normalize_owner(owner):
    """An owner dict with exactly the keys pid, host, boot_id and pid_start (missing ones None)."""
    owner = owner or {}
    pid = owner.get('pid')
    if pid is not None:
        try:
            pid = int(pid)
        except (TypeError, ValueError):
            raise StateError('owner pid %r is not an integer' % (pid,))
    normalized = {'pid': pid, 'host': owner.get('host') or None, 'boot_id': owner.get('boot_id') or None,
                  'pid_start': owner.get('pid_start')}
    if normalized['pid_start'] is not None:
        normalized['pid_start'] = str(normalized['pid_start'])
    return normalized


def process_alive(pid, pid_start=None):
    """Whether process ``pid`` exists on this host (and, when ``pid_start`` is known, is still the same process)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except OSError as error:
        if error.errno == errno.ESRCH:
            return False
        if error.errno != errno.EPERM:
            raise
    stat = _proc_stat(pid)
    if stat is None:
        return True  # no /proc: the signal check is all there is
    if stat[0] in ('Z', 'X'):
        return False
    return pid_start is None or stat[2] == str(pid_start)


def holder_state(lock, now, stale_after=0, local=None):
    """``(state, why)``: state ``live``, ``stale`` (its holder is gone) or ``unknown`` (another host, not expired)."""
    local = local or local_identity()
    host = lock.get('host')
    pid = lock.get('pid')
    same_host = host is not None and host == local.get('host')
    if same_host and lock.get('boot_id') and local.get('boot_id') and lock['boot_id'] != local['boot_id']:
        return 'stale', 'host %s was rebooted since' % host
    if same_host and pid:
        if process_alive(int(pid), lock.get('pid_start')):
            return 'live', 'pid %s on %s is running' % (pid, host)
        return 'stale', 'pid %s on %s is no longer running' % (pid, host)
    refreshed = parse_time(lock.get('refreshed_at') or lock.get('started_at'))
    if stale_after and refreshed is not None and now - refreshed > stale_after:
        return 'stale', 'not refreshed for %d seconds (more than %s)' % (now - refreshed, stale_after)
    if same_host:
        return 'unknown', 'the holder process is not known'
    return 'unknown', 'held from host %s, which cannot be checked from %s' % (host, local.get('host'))


def lock_owner(lock):
    """The owner part of a lock (pid, host, boot_id, pid_start), what ``owner`` takes; None without a lock."""
    if lock is None:
        return None
    return dict((key, lock.get(key)) for key in OWNER_KEYS)


def describe_holder(lock):
    return 'since %s, pid %s on host %s (run %s, version %s)' % (
        lock.get('started_at'), lock.get('pid'), lock.get('host'), lock.get('run_id'), lock.get('version'))


# --- the record ---------------------------------------------------------------------------------------------

def new_record(service, version, previous_version, run_id, now):
    """A fresh record. Every key is always present:

    ``schema`` (1), ``service``, ``version``, ``previous_version`` (the stable version, or None), ``status``
    (running, paused, promoted, rolled_back, aborted), ``run_id`` (the run that began or last resumed it),
    ``started_at``, ``updated_at``, ``finished_at`` (None until promoted/rolled_back/aborted), ``step`` (index of
    the current step, None before the first), ``weight`` (its canary percent), ``reason`` (why it finished),
    ``steps`` (``[{index, weight, verdict, reason, at, started_at}]`` by index: ``at`` is the entry's last change,
    ``started_at`` when the step began at its weight; see ``COMPLETE_VERDICTS`` for the verdicts), ``events`` (``[{at, message}]``, oldest
    first, at most 1000) and ``events_dropped`` (older events removed to keep that bound).
    """
    stamp = format_time(now)
    return {
        'schema': SCHEMA_VERSION,
        'service': service,
        'version': version,
        'previous_version': previous_version,
        'status': 'running',
        'run_id': run_id,
        'started_at': stamp,
        'updated_at': stamp,
        'finished_at': None,
        'step': None,
        'weight': None,
        'reason': None,
        'steps': [],
        'events': [],
        'events_dropped': 0,
    }


def _append_event(record, message, now):
    record['events'].append({'at': format_time(now), 'message': message})
    overflow = len(record['events']) - MAX_EVENTS
    if overflow > 0:
        del record['events'][:overflow]
        record['events_dropped'] = record.get('events_dropped', 0) + overflow


def _format_percent(weight):
    if weight is None:
        return '-'
    return ('%g' % weight) + ' %'


def describe_position(record):
    if record.get('step') is None:
        return 'before the first step'
    return 'at step %s (%s)' % (record['step'], _format_percent(record.get('weight')))


def next_step(record):
    """The index of the step a (resumed) run starts with: the current one unless its verdict completed it."""
    if record is None or record.get('step') is None:
        return 0
    current = [entry for entry in record.get('steps', []) if entry.get('index') == record['step']]
    if current and current[-1].get('verdict') in COMPLETE_VERDICTS:
        return record['step'] + 1
    return record['step']


def _derived_previous(record):
    """The stable version after a finished record: the new version once promoted, else the one it replaced."""
    if record is None:
        return None
    if record.get('status') == 'promoted':
        return record.get('version')
    return record.get('previous_version')


def _prefix(record):
    return '%s %s' % (record['service'], record['version'])


# --- operations ------------------------------------------------------------------------------------------------

def _result(files, before, after, lock_before, lock_after, run_id, message, warnings, **extra):
    changed = before != after or lock_before != lock_after
    result = {
        'changed': changed,
        'record': after,
        'before': before,
        'lock': lock_after,
        'run_id': run_id,
        'message': message,
        'warnings': warnings,
        'owner': lock_owner(lock_after),
        'record_path': files.record_path,
        'lock_path': files.lock_path,
    }
    result.update(extra)
    return result


def _check_lock(files, lock, run_id, now, stale_after, break_lock, local, warnings, replaces_run_id=None):
    """Decide whether the caller may act while ``lock`` exists. Returns the taken-over lock (or None)."""
    if lock is None or (run_id and lock.get('run_id') == run_id):
        return None
    state, why = holder_state(lock, now, stale_after, local)
    if state == 'unknown' and replaces_run_id and lock.get('run_id') == replaces_run_id:
        state, why = 'stale', 'run %s is gone (replaces_run_id)' % replaces_run_id
    service = files.service
    if state == 'stale':
        warnings.append('took over the stale lock of %s: %s; it was held %s'
                        % (service, why, describe_holder(lock)))
        return lock
    if break_lock:
        warnings.append('broke the lock of %s (break_lock): %s; it was held %s' % (service, why, describe_holder(lock)))
        return lock
    hint = ''
    if state == 'unknown':
        hint = ' (%s; if that run is gone, pass break_lock: true)' % why
    raise LockHeldError('rollout of %s already running %s%s' % (service, describe_holder(lock), hint), lock)


def _new_lock(service, run_id, version, owner, now, since=None):
    stamp = format_time(now)
    lock = {'service': service, 'run_id': run_id, 'version': version}
    lock.update(normalize_owner(owner))
    lock['started_at'] = since or stamp
    lock['refreshed_at'] = stamp
    return lock


def newer_record(record, seed, service):
    """The record ``begin`` starts from: ``seed`` (a copy of the record from another host) when it is a valid
    record of ``service`` and this host has none or an older one (``updated_at``), else ``record``."""
    if seed is None:
        return record
    if not isinstance(seed, dict) or seed.get('service') != service:
        raise StateError('seed_record is not a record of service %s' % service)
    missing = [key for key in ('schema', 'version', 'status', 'started_at', 'updated_at', 'steps', 'events')
               if key not in seed]
    if missing or not isinstance(seed['schema'], int) or seed['schema'] > SCHEMA_VERSION:
        raise StateError('seed_record is not a rollout record of schema %d or older (missing %s)'
                         % (SCHEMA_VERSION, ', '.join(missing) or 'nothing, schema %r' % seed.get('schema')))
    if seed.get('status') not in STATUSES:
        raise StateError('seed_record has an unknown status %r' % (seed.get('status'),))
    if record is None:
        return copy.deepcopy(seed)
    seed_time, own_time = parse_time(seed.get('updated_at')), parse_time(record.get('updated_at'))
    if seed_time is not None and (own_time is None or seed_time > own_time):
        return copy.deepcopy(seed)
    return record


def begin(state_dir, service, version, previous_version=None, run_id=None, owner=None, force=False,
          break_lock=False, stale_after=0, check_mode=False, now=None, local=None, replaces_run_id=None,
          seed_record=None):
    """Start a rollout of ``version`` (or resume the unfinished one of the same version) and take the lock.

    ``seed_record`` is a copy of the record from another host (the traffic host's, when this controller's state
    directory is new, as in AWX): when this host has no record or an older one, begin decides from the seed
    (and writes it here), so the rollout resumes where the newest copy says.

    * no record, or the last one finished: a new record; ``previous_version`` defaults to the stable version the
      last record left (its version when promoted, else its previous version). A record of this very version that
      was promoted is left alone (``already_promoted``) unless ``force``.
    * an unfinished record of the same version: resumed (``resumed``), status running, ``next_step`` tells where
      to continue.
    * an unfinished record of another version: refused (:class:`VersionConflictError`) unless ``force``, which
      replaces it.
    * the lock held by another live run: refused (:class:`LockHeldError`); a stale one is taken over, and so is
      one held from another host by ``replaces_run_id`` (a run the caller knows to be gone, for example the one
      that ``begin`` on the controller just took over; from here it cannot be checked).
    """
    now = time.time() if now is None else now
    validate_version(version)
    if previous_version is not None:
        validate_version(previous_version, 'previous_version')
    files = StateFiles(state_dir, service)
    owner = normalize_owner(owner if owner is not None else current_owner())
    warnings = []
    with files.mutex(check_mode):
        own = files.read_record()
        before = newer_record(own, seed_record, service)
        lock_before = files.read_lock()
        mine = bool(run_id and lock_before and lock_before.get('run_id') == run_id)
        taken_over = _check_lock(files, lock_before, run_id, now, stale_after, break_lock, local, warnings,
                                 replaces_run_id)
        run_id = run_id or uuid.uuid4().hex
        extra = {'resumed': False, 'already_promoted': False, 'taken_over': taken_over,
                 'seeded': before is not own}
        if before is not own:
            warnings.append('%s: this host had %s; continuing from the newer copy of the record (%s, updated %s)'
                            % (service, 'no record' if own is None else 'an older record (updated %s)'
                               % own.get('updated_at'), before.get('status'), before.get('updated_at')))

        if (before is not None and before.get('status') == 'promoted' and before.get('version') == version
                and not force):
            message = '%s: already promoted on %s; nothing to do' % (_prefix(before), before.get('finished_at'))
            extra['already_promoted'] = True
            _keep_seed(files, own, before, check_mode)
            return _result(files, own, before, lock_before, lock_before, run_id, message, warnings,
                           next_step=None, **extra)

        if before is not None and before.get('status') in UNFINISHED and before.get('version') == version:
            if mine and before.get('status') == 'running' and before.get('run_id') == run_id:
                message = '%s: already begun by this run, %s' % (_prefix(before), describe_position(before))
                _keep_seed(files, own, before, check_mode)
                return _result(files, own, before, lock_before, lock_before, run_id, message, warnings,
                               next_step=next_step(before), **extra)
            after = copy.deepcopy(before)
            if previous_version is not None and previous_version != before.get('previous_version'):
                warnings.append('%s: resuming with the recorded previous version %s, not %s'
                                % (_prefix(before), before.get('previous_version'), previous_version))
            after['status'] = 'running'
            after['run_id'] = run_id
            after['updated_at'] = format_time(now)
            message = '%s: resumed %s by run %s' % (_prefix(after), describe_position(after), run_id)
            _append_event(after, message, now)
            extra['resumed'] = True
        else:
            replaced = ''
            if before is not None and before.get('status') in UNFINISHED:
                if not force:
                    raise VersionConflictError(
                        'rollout of %s %s is unfinished (%s %s, started %s); finish or roll it back first, '
                        'or pass force: true to replace it with %s'
                        % (service, before.get('version'), before.get('status'), describe_position(before),
                           before.get('started_at'), version), before)
                replaced = ' (replacing the unfinished rollout of %s %s, forced)' % (
                    before.get('version'), describe_position(before))
                warnings.append('%s: replaced the unfinished rollout of %s %s (force)'
                                % (service, before.get('version'), describe_position(before)))
                derived = before.get('previous_version')
            else:
                derived = _derived_previous(before)
            previous = previous_version if previous_version is not None else derived
            after = new_record(service, version, previous, run_id, now)
            message = '%s: rollout started (previous version %s) by run %s%s' % (
                _prefix(after), previous or 'unknown', run_id, replaced)
            _append_event(after, message, now)

        since = lock_before.get('started_at') if mine else None
        lock_after = _new_lock(service, run_id, version, owner, now, since)
        if not check_mode:
            files.write_lock(lock_after)
            files.write_record(after)
        return _result(files, own, after, lock_before, lock_after, run_id, message, warnings,
                       next_step=next_step(after), **extra)


def _keep_seed(files, own, record, check_mode):
    """Write ``record`` when it came from a seed (another host's newer copy), so this host has it too."""
    if record is not own and not check_mode:
        files.write_record(record)


def _load_for_update(files, version):
    record = files.read_record()
    if record is None:
        raise StateError('no rollout record for %s in %s' % (files.service, files.state_dir))
    if version is not None and record.get('version') != version:
        raise StateError('the rollout record of %s is for version %s, not %s'
                         % (files.service, record.get('version'), version))
    return record


def _require_unfinished(record):
    if record.get('status') not in UNFINISHED:
        raise StateError('the rollout of %s already finished as %s on %s'
                         % (_prefix(record), record.get('status'), record.get('finished_at')))


def _check_own_lock(files, lock, run_id, now, stale_after, break_lock, local, warnings):
    """For step and finish: the caller's run must hold the lock, or the lock must be free (one-shot call)."""
    if run_id and lock is None:
        raise StateError('run %s does not hold the lock of %s (it was released or broken)' % (run_id, files.service))
    return _check_lock(files, lock, run_id, now, stale_after, break_lock, local, warnings)


def record_step(state_dir, service, step, weight=None, verdict=None, reason=None, status=None, version=None,
                run_id=None, owner=None, break_lock=False, stale_after=0, check_mode=False, now=None, local=None):
    """Record step ``step`` (index from 0) at ``weight`` percent with an optional ``verdict`` and ``reason``.

    Makes it the current step; ``status`` may switch the rollout between running and paused. Recording exactly
    what is already recorded changes nothing. The lock must be held by ``run_id`` (or be free: one-shot call).
    """
    now = time.time() if now is None else now
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise StateError('step must be an integer index from 0, got %r' % (step,))
    if weight is not None:
        weight = float(weight)
        if not 0.0 <= weight <= 100.0:
            raise StateError('weight must be a percent from 0 to 100, got %r' % (weight,))
    if status is not None and status not in STEP_STATUSES:
        raise StateError('status of a step must be one of %s, got %r' % (', '.join(STEP_STATUSES), status))
    files = StateFiles(state_dir, service)
    warnings = []
    with files.mutex(check_mode):
        before = _load_for_update(files, version)
        _require_unfinished(before)
        lock_before = files.read_lock()
        taken_over = _check_own_lock(files, lock_before, run_id, now, stale_after, break_lock, local, warnings)
        after = copy.deepcopy(before)
        entry = {'index': step, 'weight': weight, 'verdict': verdict, 'reason': reason}
        existing = [item for item in after['steps'] if item.get('index') == step]
        same_entry = bool(existing) and dict((key, existing[0].get(key)) for key in entry) == entry
        if not same_entry:
            entry['at'] = format_time(now)
            entry['started_at'] = step_started_at(existing[0] if existing else None, weight, entry['at'])
            after['steps'] = sorted([item for item in after['steps'] if item.get('index') != step] + [entry],
                                    key=lambda item: item['index'])
        after['step'] = step
        after['weight'] = weight
        if status is not None:
            after['status'] = status
        message = '%s: step %d at %s' % (_prefix(after), step, _format_percent(weight))
        if verdict:
            message += ', verdict %s' % verdict
        if reason:
            message += ': %s' % reason
        if after['status'] != before['status']:
            message += ' (%s)' % after['status']
        lock_after = lock_before
        if after != before or taken_over is not None:
            after['updated_at'] = format_time(now)
            _append_event(after, message, now)
            lock_after = _refreshed_lock(files, lock_before, taken_over, run_id, after, owner, now)
            if not check_mode:
                _write(files, after, lock_before, lock_after)
        return _result(files, before, after, lock_before, lock_after, lock_after and lock_after.get('run_id'),
                       message, warnings, taken_over=taken_over, next_step=next_step(after))


def step_started_at(existing, weight, stamp):
    """``started_at`` of a step entry recorded at ``stamp``: kept from the entry it replaces when that one had the
    same weight (the step goes on), else ``stamp`` (the step begins, or begins again at another weight)."""
    if existing is not None and existing.get('weight') == weight:
        return existing.get('started_at') or existing.get('at') or stamp
    return stamp


def _refreshed_lock(files, lock_before, taken_over, run_id, record, owner, now):
    """The lock after a write: refreshed for its holder; a taken-over lock passes to the caller's run, or is
    released by a one-shot call (no run id); a one-shot call on a free lock leaves it free."""
    if lock_before is None:
        return None
    if taken_over is not None:
        if not run_id:
            return None
        return _new_lock(files.service, run_id, record['version'], owner if owner is not None else current_owner(), now)
    lock = dict(lock_before)
    lock['refreshed_at'] = format_time(now)
    return lock


def _write(files, record, lock_before, lock_after):
    if lock_after is None:
        if lock_before is not None:
            files.remove_lock()
    elif lock_after != lock_before:
        files.write_lock(lock_after)
    files.write_record(record)


def add_event(state_dir, service, message, version=None, run_id=None, check_mode=False, now=None):
    """Append a timestamped one-line event to the record (any status). Always a change; never checks the lock."""
    now = time.time() if now is None else now
    if not isinstance(message, str) or not message.strip():
        raise StateError('an event needs a non-empty message')
    message = ' '.join(message.split())  # one line
    files = StateFiles(state_dir, service)
    with files.mutex(check_mode):
        before = _load_for_update(files, version)
        lock = files.read_lock()
        after = copy.deepcopy(before)
        _append_event(after, message, now)
        after['updated_at'] = format_time(now)
        if not check_mode:
            files.write_record(after)
        return _result(files, before, after, lock, lock, run_id or (lock or {}).get('run_id'),
                       '%s: %s' % (_prefix(after), message), [])


def finish(state_dir, service, status, reason=None, version=None, run_id=None, owner=None, break_lock=False,
           stale_after=0, check_mode=False, now=None, local=None):
    """End the run: status ``promoted``, ``rolled_back`` or ``aborted`` finishes the rollout; ``paused`` leaves it
    unfinished (the next ``begin`` of the same version resumes it). Releases the lock either way.

    Finishing again with the status it already has changes nothing; a rollout that finished with another status
    is refused.
    """
    now = time.time() if now is None else now
    if status not in FINISH_STATUSES:
        raise StateError('finish status must be one of %s, got %r' % (', '.join(FINISH_STATUSES), status))
    files = StateFiles(state_dir, service)
    warnings = []
    with files.mutex(check_mode):
        before = _load_for_update(files, version)
        lock_before = files.read_lock()
        mine = bool(run_id and lock_before and lock_before.get('run_id') == run_id)
        if before.get('status') == status and (lock_before is None or (mine and status in FINISHED)):
            lock_after = lock_before
            if mine:
                lock_after = None
                if not check_mode:
                    files.remove_lock()
            message = '%s: already %s' % (_prefix(before), status)
            if before.get('finished_at'):
                message += ' on %s' % before['finished_at']
            return _result(files, before, before, lock_before, lock_after, run_id, message, warnings,
                           taken_over=None)
        _require_unfinished(before)
        taken_over = _check_own_lock(files, lock_before, run_id, now, stale_after, break_lock, local, warnings)
        after = copy.deepcopy(before)
        after['status'] = status
        after['updated_at'] = format_time(now)
        if status in FINISHED:
            after['finished_at'] = format_time(now)
            after['reason'] = reason
        words = {'promoted': 'promoted',
                 'rolled_back': 'rolled back to %s' % (after.get('previous_version') or 'the stable version'),
                 'aborted': 'aborted', 'paused': 'paused %s, lock released' % describe_position(after)}
        message = '%s: %s' % (_prefix(after), words[status])
        if reason:
            message += ': %s' % ' '.join(reason.split())
        _append_event(after, message, now)
        if not check_mode:
            _write(files, after, lock_before, None)
        return _result(files, before, after, lock_before, None, run_id or (lock_before or {}).get('run_id'),
                       message, warnings, taken_over=taken_over)


def read(state_dir, service, stale_after=0, now=None, local=None):
    """The record (None when there is none) and the lock with its holder's state; never writes or locks."""
    now = time.time() if now is None else now
    files = StateFiles(state_dir, service)
    record = files.read_record()
    lock = files.read_lock()
    if lock is not None:
        lock = dict(lock)
        lock['holder_state'], lock['holder_reason'] = holder_state(lock, now, stale_after, local)
    if record is None:
        message = '%s: no rollout recorded' % service
    else:
        message = '%s: %s %s' % (_prefix(record), record.get('status'), describe_position(record))
    return {'changed': False, 'record': record, 'before': record, 'lock': lock,
            'run_id': (lock or {}).get('run_id'), 'owner': lock_owner(lock), 'message': message, 'warnings': [],
            'exists': record is not None, 'next_step': next_step(record) if record else 0,
            'record_path': files.record_path, 'lock_path': files.lock_path}
