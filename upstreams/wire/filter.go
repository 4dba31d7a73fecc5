package wire

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// snapLen is how much of each segment is kept: the Ethernet, IP and TCP headers at
// their longest (14 + 60 + 60), rounded up. Payload is counted from the IP lengths,
// never read.
const snapLen = 256

// packetOutgoing is skb->pkt_type for a packet this host sends (linux/if_packet.h). On
// loopback every segment is seen twice, sent and received; libpcap keeps the received
// copy, and so does the filter.
const packetOutgoing = 4

// step is one instruction of a program under construction; a JumpIf names where it
// goes by label ("" is the next instruction), resolved by assemble.
type step struct {
	label   string // this step's own label, or ""
	ins     bpf.Instruction
	yes, no string
}

// portFilter is a classic BPF program that keeps, truncated to snapLen, the received
// copies of unfragmented TCP segments to or from port, over IPv4 or IPv6 on an
// Ethernet-framed link (loopback and veth are). Everything else stays in the kernel.
func portFilter(port uint16) ([]bpf.RawInstruction, error) {
	p := uint32(port)
	jeq := func(v uint32, yes, no string) step {
		return step{ins: bpf.JumpIf{Cond: bpf.JumpEqual, Val: v}, yes: yes, no: no}
	}
	return assemble([]step{
		{ins: bpf.LoadExtension{Num: bpf.ExtType}},
		jeq(packetOutgoing, "drop", ""),
		{ins: bpf.LoadAbsolute{Off: 12, Size: 2}}, // EtherType
		jeq(0x0800, "", "ip6"),
		// IPv4: TCP, not a fragment, then the ports after the IP header (X = its length).
		{ins: bpf.LoadAbsolute{Off: 14 + 9, Size: 1}},
		jeq(6, "", "drop"),
		{ins: bpf.LoadAbsolute{Off: 14 + 6, Size: 2}},
		{ins: bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 0x1fff}, yes: "drop"},
		{ins: bpf.LoadMemShift{Off: 14}},
		{ins: bpf.LoadIndirect{Off: 14, Size: 2}},
		jeq(p, "accept", ""),
		{ins: bpf.LoadIndirect{Off: 14 + 2, Size: 2}},
		jeq(p, "accept", "drop"),
		// IPv6: next header TCP (idlerace's connections carry no extension headers).
		{label: "ip6", ins: bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x86dd}, no: "drop"},
		{ins: bpf.LoadAbsolute{Off: 14 + 6, Size: 1}},
		jeq(6, "", "drop"),
		{ins: bpf.LoadAbsolute{Off: 14 + 40, Size: 2}},
		jeq(p, "accept", ""),
		{ins: bpf.LoadAbsolute{Off: 14 + 42, Size: 2}},
		jeq(p, "accept", "drop"),
		{label: "accept", ins: bpf.RetConstant{Val: snapLen}},
		{label: "drop", ins: bpf.RetConstant{Val: 0}},
	})
}

// assemble resolves the steps' labels into relative skips and assembles them.
func assemble(steps []step) ([]bpf.RawInstruction, error) {
	at := map[string]int{}
	for i, s := range steps {
		if s.label != "" {
			at[s.label] = i
		}
	}
	skip := func(from int, label string) (uint8, error) {
		if label == "" {
			return 0, nil
		}
		to, ok := at[label]
		if !ok || to <= from || to-from-1 > 255 {
			return 0, fmt.Errorf("wire: bpf: no forward label %q from step %d", label, from)
		}
		return uint8(to - from - 1), nil
	}
	prog := make([]bpf.Instruction, len(steps))
	for i, s := range steps {
		prog[i] = s.ins
		if j, ok := s.ins.(bpf.JumpIf); ok {
			var err error
			if j.SkipTrue, err = skip(i, s.yes); err != nil {
				return nil, err
			}
			if j.SkipFalse, err = skip(i, s.no); err != nil {
				return nil, err
			}
			prog[i] = j
		}
	}
	return bpf.Assemble(prog)
}
