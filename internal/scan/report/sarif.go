package report

import (
	"encoding/json"
	"io"
	"strings"

	"github.com/interlock-dev/interlock/internal/scan"
)

// RuleInfo describes a rule for SARIF's tool.driver.rules.
type RuleInfo struct {
	ID, Name, Help string
}

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool        sarifTool         `json:"tool"`
	Results     []sarifResult     `json:"results"`
	Invocations []sarifInvocation `json:"invocations"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

type sarifText struct {
	Text string `json:"text"`
}

type sarifRule struct {
	ID                   string         `json:"id"`
	Name                 string         `json:"name,omitempty"`
	ShortDescription     sarifText      `json:"shortDescription"`
	Help                 sarifText      `json:"help"`
	DefaultConfiguration map[string]any `json:"defaultConfiguration"`
	Properties           map[string]any `json:"properties"`
}

type sarifResult struct {
	RuleID              string            `json:"ruleId"`
	RuleIndex           int               `json:"ruleIndex"`
	Level               string            `json:"level"`
	Message             sarifText         `json:"message"`
	Locations           []sarifLocation   `json:"locations"`
	PartialFingerprints map[string]string `json:"partialFingerprints"`
	Properties          map[string]any    `json:"properties,omitempty"`
}

type sarifLocation struct {
	PhysicalLocation sarifPhysical `json:"physicalLocation"`
}

type sarifPhysical struct {
	ArtifactLocation sarifArtifact `json:"artifactLocation"`
	Region           sarifRegion   `json:"region"`
}

type sarifArtifact struct {
	URI string `json:"uri"`
}

type sarifRegion struct {
	StartLine   int `json:"startLine"`
	StartColumn int `json:"startColumn,omitempty"`
}

type sarifInvocation struct {
	ExecutionSuccessful        bool                `json:"executionSuccessful"`
	ToolExecutionNotifications []sarifNotification `json:"toolExecutionNotifications,omitempty"`
}

type sarifNotification struct {
	Level   string    `json:"level"`
	Message sarifText `json:"message"`
}

func sarifLevel(s scan.Severity) string {
	switch {
	case s >= scan.SeverityHigh:
		return "error"
	case s == scan.SeverityMedium:
		return "warning"
	}
	return "note"
}

// securitySeverity maps to GitHub's 0.0–10.0 "security-severity".
func securitySeverity(s scan.Severity) string {
	return [...]string{"1.0", "3.0", "5.5", "8.0", "9.5"}[s]
}

// SARIF writes a SARIF 2.1.0 log with one run. Locations are relative
// URIs (paths inside archives keep the "!" separator).
func SARIF(w io.Writer, fs []scan.Finding, s Summary, version string) error {
	run := sarifRun{Tool: sarifTool{Driver: sarifDriver{Name: "interlock", InformationURI: "https://github.com/interlock-dev/interlock"}}}
	index := map[string]int{}
	for _, f := range fs {
		if _, ok := index[f.RuleID]; ok {
			continue
		}
		index[f.RuleID] = len(run.Tool.Driver.Rules)
		run.Tool.Driver.Rules = append(run.Tool.Driver.Rules, sarifRule{
			ID:                   f.RuleID,
			ShortDescription:     sarifText{Text: firstSentence(f.Message)},
			Help:                 sarifText{Text: f.Fix},
			DefaultConfiguration: map[string]any{"level": sarifLevel(f.Severity)},
			Properties:           map[string]any{"tags": []string{"security", string(f.Kind)}, "security-severity": securitySeverity(f.Severity)},
		})
	}
	run.Results = []sarifResult{}
	for _, f := range fs {
		res := sarifResult{
			RuleID:    f.RuleID,
			RuleIndex: index[f.RuleID],
			Level:     sarifLevel(f.Severity),
			Message:   sarifText{Text: f.Message + " (" + f.Match + ")"},
			Locations: []sarifLocation{{PhysicalLocation: sarifPhysical{
				ArtifactLocation: sarifArtifact{URI: f.File},
				Region:           sarifRegion{StartLine: max(1, f.Line), StartColumn: f.Column},
			}}},
			PartialFingerprints: map[string]string{"interlock/v1": f.Fingerprint},
		}
		if f.Commit != "" {
			res.Properties = map[string]any{"commit": f.Commit, "author": f.Author, "date": f.Date}
		}
		run.Results = append(run.Results, res)
	}
	inv := sarifInvocation{ExecutionSuccessful: !s.Stats.Incomplete()}
	for _, k := range s.Stats.Skipped {
		if k.Reason.Incomplete() {
			inv.ToolExecutionNotifications = append(inv.ToolExecutionNotifications, sarifNotification{Level: "warning", Message: sarifText{Text: k.Path + ": " + string(k.Reason)}})
		}
	}
	run.Invocations = []sarifInvocation{inv}
	log := sarifLog{Schema: "https://json.schemastore.org/sarif-2.1.0.json", Version: "2.1.0", Runs: []sarifRun{run}}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(log)
}

func firstSentence(s string) string {
	if i := strings.Index(s, " (source:"); i > 0 {
		s = s[:i]
	}
	return s
}
