// Package rules is the clinical alerts' rule pack and its YAML contract:
// what a rules file says ([Pack]: threshold [Rule]s and the [NEWS2Rule]
// settings), how it is read ([Load], [Parse]) and checked ([Validate]),
// the built-in packs ([Seed], [Default]), and the vocabulary a rule is
// written in: [Severity], [Comparator], the concept table ([Concepts]:
// every LOINC code of glucose, SpO2, ..., with its unit and the
// concept's physiological limits), the UCUM conversions ([ConvertUnit])
// and the code systems ([LOINC], [CanonicalSystem]).
//
// It must not import the processor (package alerts) or the runtime
// (package pipeline): `carepipe rules check` and a config check read a
// rules file with this package alone, and the processor imports it, so an
// import the other way would be a cycle. TestNoProcessorDependency holds
// it to that.
//
// The YAML contract has no version key. It changes only compatibly: a key
// once accepted keeps its meaning, and a new key is optional with a
// default that keeps a file's behaviour. Unknown keys are errors, so a
// file using a key this version does not know is refused with its line
// rather than half-read. Every problem is reported, each an [*Error] with
// its line; a file with a problem loads nothing.
//
// Invariants:
//
//   - A value is compared only in its rule's unit: conversion is by exact
//     table entry, and a unit or analyte the table lacks does not convert
//     (units.go).
//   - A pack that loads or validates can be evaluated: every unit is in
//     the table, and every code of the concept table a rule matches
//     converts to its rule's unit.
//   - The tables are read-only; [Concepts] and [Units] return copies.
//
// Files by concern: rules.go the pack, its checks and its YAML parser;
// severity.go the severities; concepts.go the concept table and
// code-system aliases; units.go the unit conversions.
package rules
