// Package bench measures what porttrace costs the programs it watches: fixed
// socket loops run bare and under the porttrace binary in one run, and the
// medians are compared. Run it with `make bench` (as root).
package bench
