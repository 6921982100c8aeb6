package main

import (
	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/progress"
	"github.com/cairn-backup/cairn/render"
)

// renderer renders the engine's events (see render.Events) on this run's
// streams, its stages as progress bars.
func (a *app) renderer(asJSON bool) *render.Events {
	return &render.Events{Out: a.stdout, Err: a.stderr, JSON: asJSON, Stages: func(name string) cairn.Stage { return barStage{a.bar(name)} }}
}

// barStage is a stage drawn as a progress bar.
type barStage struct{ *progress.Bar }

func (b barStage) End() { b.Finish() }
