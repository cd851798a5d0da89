package pipeline

import (
	"slices"
	"sort"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// copartitionedProtocol is the group protocol of [copartitioned].
const copartitionedProtocol = "carepipe-copartitioned"

// copartitioned is the runner's group balancer: cooperative (KIP-429), so
// that a rebalance moves only the partitions that change owner and every
// other member goes on processing, and co-partitioned, so that partition p
// of every consumed topic (an input and its repartition topic) goes to the
// member whose task p is, as a task needs. It is sticky: a member keeps
// the partitions it owns up to its share, and only the excess moves.
//
// It also records the assignment each sync gives this member, whole. The
// runner reads ownership from it rather than from the revoke callbacks,
// which GroupTransactSession passes on only once between two transaction
// ends (DESIGN.md §4): a cooperative onAssigned carries only what was
// added, so a revoke it swallowed would otherwise leave a partition the
// member no longer has looking owned.
//
// Each session has its own; Kafka chooses a protocol every member offers,
// so a group of instances that offer only the range protocol (an older
// carepipe) is served by rangeRecorder until all of them are replaced.
//
// Its join metadata advertises the member's query address, and the
// leader's assignment tells every member which partitions each address
// answers for (see hosts.go).
type copartitioned struct {
	synced *syncedAssignment
	// advertise is this member's query address; empty: none.
	advertise string
}

// syncedAssignment is this member's assignment as its last sync gave it,
// with the group's query owners (partition -> advertised address) when
// the sync carried them.
type syncedAssignment struct {
	mu       sync.Mutex
	assigned map[string][]int32
	owners   map[int32]string
}

func (s *syncedAssignment) set(a map[string][]int32, owners map[int32]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.assigned, s.owners = a, owners
}

// queryOwners is the owners map of the last sync; nil: it carried none.
// The map is never written after the sync that made it.
func (s *syncedAssignment) queryOwners() map[int32]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.owners
}

// partitions are the partitions assigned in every one of topics: the
// tasks this member owns.
func (s *syncedAssignment) partitions(topics []string) map[int32]struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	own := make(map[int32]struct{})
	for i, t := range topics {
		if i == 0 {
			for _, p := range s.assigned[t] {
				own[p] = struct{}{}
			}
			continue
		}
		for p := range own {
			if !slices.Contains(s.assigned[t], p) {
				delete(own, p)
			}
		}
	}
	return own
}

func (*copartitioned) ProtocolName() string { return copartitionedProtocol }
func (*copartitioned) IsCooperative() bool  { return true }

// JoinGroupMetadata is the consumer protocol's metadata with the member's
// owned partitions, which the cooperative protocol requires, and its
// advertised query address as user data.
func (b *copartitioned) JoinGroupMetadata(interests []string, current map[string][]int32, generation int32) []byte {
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Version = 3
	meta.Topics = interests
	meta.Generation = generation
	topics := make([]string, 0, len(current))
	for t := range current {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	for _, t := range topics {
		op := kmsg.NewConsumerMemberMetadataOwnedPartition()
		op.Topic, op.Partitions = t, current[t]
		meta.OwnedPartitions = append(meta.OwnedPartitions, op)
	}
	meta.UserData = memberUserData(b.advertise)
	return meta.AppendTo(nil)
}

func (b *copartitioned) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	a, err := kgo.ParseConsumerSyncAssignment(assignment)
	if err == nil {
		b.synced.set(a, parseOwners(assignment))
	}
	return a, err
}

func (b *copartitioned) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	cb, err := kgo.NewConsumerBalancer(b, members)
	return cb, cb.MemberTopics(), err
}

// Balance assigns partition numbers ("units") to members, sticky and even,
// then each member every topic's partitions of its units, then takes out
// of the plan what changes owner in this round: its owner revokes it first
// and rejoins, and the next round assigns it (KIP-429). Every member's
// assignment carries the query owners: each advertised address with the
// partitions its member owns after this round.
func (*copartitioned) Balance(cb *kgo.ConsumerBalancer, topics map[string]int32) kgo.IntoSyncAssignment {
	members := cb.Members() // sorted by instance id, then member id
	units := int32(0)
	for _, n := range topics {
		units = max(units, n)
	}
	// A unit's owner is the member that owns its partition of the most
	// topics: after a partial move it may hold only some of them.
	owner := make([]int, units)
	held := make([]int, units)
	for i := range owner {
		owner[i] = -1
	}
	for mi := range members {
		_, meta := cb.MemberAt(mi)
		count := make(map[int32]int)
		for _, op := range meta.OwnedPartitions {
			for _, p := range op.Partitions {
				if p < units {
					count[p]++
				}
			}
		}
		for p, n := range count {
			if n > held[p] {
				owner[p], held[p] = mi, n
			}
		}
	}
	kept := make([][]int32, len(members))
	for p := range units {
		if o := owner[p]; o >= 0 {
			kept[o] = append(kept[o], p)
		}
	}
	// Shares: the members that own the most get the larger ones, so that
	// as little as possible moves.
	order := make([]int, len(members))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return len(kept[order[a]]) > len(kept[order[b]]) })
	share := make([]int, len(members))
	base, extra := int(units)/len(members), int(units)%len(members)
	for rank, mi := range order {
		share[mi] = base
		if rank < extra {
			share[mi]++
		}
	}
	var free []int32
	for mi := range members {
		if len(kept[mi]) > share[mi] {
			free = append(free, kept[mi][share[mi]:]...)
			kept[mi] = kept[mi][:share[mi]]
		}
	}
	for p := range units {
		if owner[p] < 0 {
			free = append(free, p)
		}
	}
	slices.Sort(free)
	for mi := range members {
		for len(kept[mi]) < share[mi] && len(free) > 0 {
			kept[mi] = append(kept[mi], free[0])
			free = free[1:]
		}
	}

	plan := cb.NewPlan()
	for mi := range members {
		m, meta := cb.MemberAt(mi)
		slices.Sort(kept[mi])
		for _, t := range meta.Topics {
			n, ok := topics[t]
			if !ok {
				continue
			}
			var ps []int32
			for _, p := range kept[mi] {
				if p < n {
					ps = append(ps, p)
				}
			}
			if len(ps) > 0 {
				plan.AddPartitions(m, t, ps)
			}
		}
	}
	plan.AdjustCooperative(cb)
	return ownersAssignment{plan: plan, userData: ownersUserData(queryOwners(cb, plan, kept, topics))}
}

// queryOwners maps each member's advertised address to the partitions it
// owns in plan: those of kept that the cooperative adjustment left it in
// every topic it consumes (co-partitioned: its tasks).
func queryOwners(cb *kgo.ConsumerBalancer, plan *kgo.BalancePlan, kept [][]int32, topics map[string]int32) map[string][]int32 {
	byMember := plan.AsMemberIDMap()
	owners := make(map[string][]int32)
	for mi := range kept {
		m, meta := cb.MemberAt(mi)
		addr := advertisedBy(meta.UserData)
		for _, p := range kept[mi] {
			owns := false
			for _, t := range meta.Topics {
				if n, ok := topics[t]; !ok || p >= n {
					continue
				}
				if owns = slices.Contains(byMember[m.MemberID][t], p); !owns {
					break
				}
			}
			if owns {
				owners[addr] = append(owners[addr], p)
			}
		}
	}
	return owners
}

// rangeRecorder is franz-go's range balancer, recording the sync as
// [copartitioned] does: the protocol a group falls back to while members
// that offer nothing else are in it.
type rangeRecorder struct {
	kgo.GroupBalancer
	synced *syncedAssignment
}

func (r rangeRecorder) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	a, err := r.GroupBalancer.ParseSyncAssignment(assignment)
	if err == nil {
		r.synced.set(a, nil)
	}
	return a, err
}
