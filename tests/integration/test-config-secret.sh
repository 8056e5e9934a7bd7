#!/bin/bash
# A config file that holds the volume's key (key = key:HEX) and that group or
# others can read gets one WARN line at start naming it and the fix, whether
# it was given with -config or found as $USBD_CONFIG_DIR/NAME.conf. Mode
# 0600, or a key given as file:PATH / env:VAR, gets none.
. "$(dirname "$0")/lib.sh"

warn_lines() { grep "warn:" $LOG | grep -c "config file $1 holds the volume's key" || true; }
vol() { echo -store=$TMP/store -store-dir=$TMP/state -name=vol; }

printf 'kind = local\nsize = 4MiB\nkey = key:%s\n' $TEST_KEY > $TMP/vol.conf
chmod 644 $TMP/vol.conf
start_usbd a -config=$TMP/vol.conf $(vol)
[ "$(warn_lines $TMP/vol.conf)" = 1 ] || { cat $LOG; fail "a 0644 config file with the key: want one warning"; }
grep "config file $TMP/vol.conf" $LOG | grep -q "(mode 0644): run chmod 600 $TMP/vol.conf" || { cat $LOG; fail "the warning does not give the mode and the fix"; }
grep -q "$TEST_KEY" $LOG && fail "the log shows the key"
stop_usbd

chmod 640 $TMP/vol.conf
start_usbd b -config=$TMP/vol.conf $(vol)
[ "$(warn_lines $TMP/vol.conf)" = 1 ] || { cat $LOG; fail "a 0640 config file with the key: want one warning"; }
stop_usbd

chmod 600 $TMP/vol.conf
start_usbd c -config=$TMP/vol.conf $(vol)
[ "$(warn_lines $TMP/vol.conf)" = 0 ] || { cat $LOG; fail "a warning for a 0600 config file"; }
stop_usbd
ok "-config: warned at 0644 and 0640, not at 0600"

# Found by name, without -config.
mkdir $TMP/etc
cp $TMP/vol.conf $TMP/etc/vol.conf; chmod 644 $TMP/etc/vol.conf
USBD_CONFIG_DIR=$TMP/etc start_usbd d $(vol)
[ "$(warn_lines $TMP/etc/vol.conf)" = 1 ] || { cat $LOG; fail "NAME.conf found by name: want one warning"; }
stop_usbd
ok "NAME.conf found by name: warned"

# Where the key is, not the key: no warning.
install -m 600 /dev/null $TMP/vol.key; echo $TEST_KEY > $TMP/vol.key
printf 'kind = local\nkey = file:%s\n' $TMP/vol.key > $TMP/ref.conf; chmod 644 $TMP/ref.conf
start_usbd e -config=$TMP/ref.conf $(vol)
grep -q "holds the volume's key" $LOG && { cat $LOG; fail "a warning for key = file:PATH"; }
stop_usbd
ok "config file secret"
