package lab

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// ServerCounts is what one server's log at one site says happened to it:
// how many processes were launched, how many came up, how many stopped
// gracefully. A start of a server that already runs launches nothing, and a
// stop of a stopped one signals nothing, so a fault-injection test compares
// these counts with the starts and stops its runbooks asked for: a step
// that took effect twice shows up as one launch or one stop too many.
type ServerCounts struct {
	// Launches are processes the launcher started ("==== ... start").
	Launches int `json:"launches"`
	// Ready are launches that reached "open for e-business".
	Ready int `json:"ready"`
	// Refused are launches that said "cannot start" and exited.
	Refused int `json:"refused"`
	// GracefulStops are SIGTERMs the server acted on ("stopping"). An
	// immediate stop (SIGKILL) leaves no line and is not counted.
	GracefulStops int `json:"gracefulStops"`
}

// Counts reads every server's log at every site: site → server → counts.
// Logs are append-only across restarts of the server, so the counts cover
// the lab's whole life; compare two readings to count what one run did.
func (l *Lab) Counts() (map[string]map[string]ServerCounts, error) {
	out := map[string]map[string]ServerCounts{}
	for _, site := range l.Topo.SiteNames() {
		out[site] = map[string]ServerCounts{}
		for _, s := range l.Topo.Servers {
			c, err := countLog(l.L.LogFile(site, s.Name))
			if err != nil {
				return nil, err
			}
			out[site][s.Name] = c
		}
	}
	return out, nil
}

// countLog counts the marker lines the launcher and runServer write.
func countLog(path string) (ServerCounts, error) {
	var c ServerCounts
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("lab counts: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, launchMarker) && strings.Contains(line, " start "):
			c.Launches++
		case strings.Contains(line, "\topen for e-business\t"):
			c.Ready++
		case strings.Contains(line, ": cannot start: "):
			c.Refused++
		case strings.Contains(line, "\tstopping\t"):
			c.GracefulStops++
		}
	}
	if err := sc.Err(); err != nil {
		return c, fmt.Errorf("lab counts: read %s: %w", path, err)
	}
	return c, nil
}

// Running lists the servers whose process runs (or is frozen) at a site.
func (l *Lab) Running(site string) []string {
	var out []string
	for _, s := range l.Topo.Servers {
		if p, err := readPidFile(l.L.PidFile(site, s.Name)); err == nil && p.life() != procGone {
			out = append(out, s.Name)
		}
	}
	return out
}
