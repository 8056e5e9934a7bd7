#!/bin/bash
# -key=key:HEX on the command line is readable by every local user in the
# process list: one WARN line at start says so and what to use instead.
# The same key from a file, or from a config file, gets no such warning.
. "$(dirname "$0")/lib.sh"

ps_warning="the key is visible to every local user in the process list (ps); use -key=file:PATH or env:VAR"
start_usbd cl -kind=local -store=$TMP/store -store-dir=$TMP/state -name=vol -size=4MiB -key=key:$TEST_KEY
[ "$(grep -cF "$ps_warning" $LOG)" = 1 ] || { cat $LOG; fail "key:HEX on the command line: want one warning"; }
grep -F "$ps_warning" $LOG | grep -q "warn: -key=key:HEX: " || fail "the warning is not at warn level or does not name -key=key:HEX"
grep -q "$TEST_KEY" $LOG && fail "the log shows the key"
stop_usbd
ok "key:HEX on the command line: one warning"

install -m 600 /dev/null $TMP/vol.key; echo $TEST_KEY > $TMP/vol.key
start_usbd f -kind=local -store=$TMP/store -store-dir=$TMP/state -name=vol -key=file:$TMP/vol.key
grep -qF "process list" $LOG && { cat $LOG; fail "a warning for file:PATH"; }
stop_usbd
install -m 600 /dev/null $TMP/vol.conf
printf 'kind = local\nkey = key:%s\n' $TEST_KEY > $TMP/vol.conf
start_usbd c -config=$TMP/vol.conf -store=$TMP/store -store-dir=$TMP/state -name=vol
grep -qF "process list" $LOG && { cat $LOG; fail "a process-list warning for a key in a config file"; }
stop_usbd
ok "file:PATH and a key in a 0600 config file: no warning"
