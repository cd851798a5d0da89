package alerts

// AlertsTotal is the number of alerts emitted so far, all severities, as
// counted in this process (a summary figure; the committed count is what
// clinical.alerts holds).
func (p *Processor) AlertsTotal() uint64 {
	var n uint64
	for _, c := range p.m.alerts {
		n += c.Get()
	}
	return n
}
