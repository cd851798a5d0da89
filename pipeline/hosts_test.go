package pipeline

import (
	"bytes"
	"maps"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A member's join metadata advertises its query address, in the same
// bytes at every join with the same owned partitions and generation (a
// static member is replaced without a rebalance only then), and with no
// user data at all when it advertises none.
func TestJoinMetadataAdvertisesTheQueryAddress(t *testing.T) {
	owned := map[string][]int32{"b": {1}, "a": {0, 2}}
	for _, tt := range []struct {
		name, addr string
	}{
		{"advertised", "10.1.2.3:8080"},
		{"none", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := &copartitioned{synced: new(syncedAssignment), advertise: tt.addr}
			first := b.JoinGroupMetadata([]string{"a", "b"}, owned, 7)
			for range 5 {
				if again := b.JoinGroupMetadata([]string{"a", "b"}, maps.Clone(owned), 7); !bytes.Equal(first, again) {
					t.Fatalf("join metadata differs between joins:\n%x\n%x", first, again)
				}
			}
			var meta kmsg.ConsumerMemberMetadata
			if err := meta.ReadFrom(first); err != nil {
				t.Fatal(err)
			}
			if got := advertisedBy(meta.UserData); got != tt.addr {
				t.Errorf("advertises %q, want %q", got, tt.addr)
			}
			if tt.addr == "" && meta.UserData != nil {
				t.Errorf("user data %q with nothing advertised, want none", meta.UserData)
			}
		})
	}
}

// member is a group member as the leader sees it in JoinGroup's answer.
func member(t *testing.T, id, addr string, topics []string, owned map[string][]int32) kmsg.JoinGroupResponseMember {
	t.Helper()
	instance := id
	m := kmsg.NewJoinGroupResponseMember()
	m.MemberID, m.InstanceID = id, &instance
	m.ProtocolMetadata = (&copartitioned{advertise: addr}).JoinGroupMetadata(topics, owned, 1)
	return m
}

// syncAll balances members over topics as the leader does and returns
// each member's view after its sync: its assignment and query owners.
func syncAll(t *testing.T, members []kmsg.JoinGroupResponseMember, topics map[string]int32) map[string]*syncedAssignment {
	t.Helper()
	leader := &copartitioned{synced: new(syncedAssignment)}
	cb, err := kgo.NewConsumerBalancer(leader, members)
	if err != nil {
		t.Fatal(err)
	}
	views := make(map[string]*syncedAssignment)
	for _, a := range leader.Balance(cb, topics).IntoSyncAssignment() {
		b := &copartitioned{synced: new(syncedAssignment)}
		if _, err := b.ParseSyncAssignment(a.MemberAssignment); err != nil {
			t.Fatal(err)
		}
		views[a.MemberID] = b.synced
	}
	return views
}

// Every member's sync carries the whole map of query owners: each
// partition to the address of the member whose tasks it is in, the same
// for every member. A partition that changes owner in this round (the
// cooperative protocol's revoke round) is no one's in it.
func TestAssignmentTellsEveryMemberEveryOwner(t *testing.T) {
	topics := []string{"in", "repartition"}
	counts := map[string]int32{"in": 6, "repartition": 6}
	addrs := map[string]string{"m1": "10.0.0.1:8080", "m2": "10.0.0.2:8080", "m3": ""}

	t.Run("a new group", func(t *testing.T) {
		var members []kmsg.JoinGroupResponseMember
		for _, id := range []string{"m1", "m2", "m3"} {
			members = append(members, member(t, id, addrs[id], topics, nil))
		}
		views := syncAll(t, members, counts)
		want := map[int32]string{}
		for id, v := range views {
			for p := range v.partitions(topics) {
				want[p] = addrs[id]
			}
		}
		if len(want) != 6 {
			t.Fatalf("%d partitions assigned, want 6", len(want))
		}
		for id, v := range views {
			if got := v.queryOwners(); !maps.Equal(got, want) {
				t.Errorf("%s's owners %v, want %v", id, got, want)
			}
		}
	})

	t.Run("a member joins", func(t *testing.T) {
		// m1 and m2 own three partitions each; m3 joins. Two of them
		// move to m3, over two rounds: this one takes them away.
		members := []kmsg.JoinGroupResponseMember{
			member(t, "m1", addrs["m1"], topics, map[string][]int32{"in": {0, 1, 2}, "repartition": {0, 1, 2}}),
			member(t, "m2", addrs["m2"], topics, map[string][]int32{"in": {3, 4, 5}, "repartition": {3, 4, 5}}),
			member(t, "m3", addrs["m3"], topics, nil),
		}
		views := syncAll(t, members, counts)
		if n := len(views["m3"].partitions(topics)); n != 0 {
			t.Fatalf("m3 got %d partitions in the revoke round, want none", n)
		}
		owners := views["m3"].queryOwners()
		var moving []int32
		for p := range int32(6) {
			addr, ok := owners[p]
			if !ok {
				moving = append(moving, p)
				continue
			}
			holder := "m2"
			if p < 3 {
				holder = "m1"
			}
			if addr != addrs[holder] {
				t.Errorf("partition %d owned by %q, want %s's %q", p, addr, holder, addrs[holder])
			}
		}
		if len(moving) != 2 {
			t.Errorf("partitions %v have no owner in the revoke round, want two (one from each of m1 and m2)", moving)
		}
		for id, v := range views {
			if got := v.queryOwners(); !maps.Equal(got, owners) {
				t.Errorf("%s's owners %v differ from m3's %v", id, got, owners)
			}
			for p := range v.partitions(topics) {
				if slices.Contains(moving, p) {
					t.Errorf("%s keeps moving partition %d", id, p)
				}
			}
		}
	})
}

// A sync without owners (a leader running the range balancer, or an
// older carepipe) says so: the owners are unknown, not "no one".
func TestSyncWithoutOwnersIsUnknown(t *testing.T) {
	var a kmsg.ConsumerMemberAssignment
	at := kmsg.NewConsumerMemberAssignmentTopic()
	at.Topic, at.Partitions = "in", []int32{0}
	a.Topics = append(a.Topics, at)
	for _, tt := range []struct {
		name     string
		userData []byte
	}{
		{"none", nil},
		{"not ours", []byte{0, 1, 2}},
		{"no owners field", []byte(`{"v":1}`)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a.UserData = tt.userData
			b := &copartitioned{synced: new(syncedAssignment)}
			if _, err := b.ParseSyncAssignment(a.AppendTo(nil)); err != nil {
				t.Fatal(err)
			}
			if got := b.synced.queryOwners(); got != nil {
				t.Errorf("owners %v, want unknown (nil)", got)
			}
		})
	}
}
