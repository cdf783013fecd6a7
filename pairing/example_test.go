package pairing_test

import (
	"fmt"
	"log"
	"net"

	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/pairing"
)

func Example() {
	// On the existing device, which holds the user key.
	user, err := crypto.GenerateIdentity()
	if err != nil {
		log.Fatal(err)
	}
	p, err := pairing.NewPairer(user, pairing.Config{
		Payload: func(cert *crypto.DeviceCert) ([]byte, error) {
			// Re-wrap the thread keys to cert.Device() here.
			return []byte("wrapped thread keys"), nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	code := p.Code().String() // shown on screen, e.g. "482-193-775-016"

	// On the new device: its own key, and the code the user typed.
	dev, err := crypto.GenerateDeviceIdentity()
	if err != nil {
		log.Fatal(err)
	}
	typed, err := pairing.ParseCode(code)
	if err != nil {
		log.Fatal(err)
	}

	// In real use, a connection between the two nodes.
	issuerEnd, joinerEnd := net.Pipe()
	done := make(chan error)
	go func() {
		_, err := p.Pair(issuerEnd)
		issuerEnd.Close()
		done <- err
	}()
	joined, err := pairing.Join(joinerEnd, typed, dev, "phone")
	if err != nil {
		log.Fatal(err)
	}
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	fmt.Println(joined.Cert.User() == user.UserID(), joined.Cert.Device() == dev.DeviceID())
	fmt.Printf("%s\n", joined.Payload)
	// Output:
	// true true
	// wrapped thread keys
}

func ExampleParseCode() {
	c, err := pairing.ParseCode("482 193 775 016")
	fmt.Println(c, err)
	_, err = pairing.ParseCode("482-193-775")
	fmt.Println(err)
	// Output:
	// 482-193-775-016 <nil>
	// malformed pairing code: 9 digits, want 12
}
