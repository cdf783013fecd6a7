package crypto_test

import (
	"bytes"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/weftnet/weft/crypto"
)

func ExampleIdentity_CertifyDevice() {
	user, err := crypto.NewIdentityFromSeed(bytes.Repeat([]byte{0}, 32))
	if err != nil {
		log.Fatal(err)
	}
	// The device generates its own key; only its ID leaves it.
	dev, err := crypto.NewDeviceIdentityFromSeed(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(dev.DeviceID())

	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cert, err := user.CertifyDevice(dev.DeviceID(), "laptop", created, 0)
	if err != nil {
		log.Fatal(err)
	}

	// A replica parses the certificate and checks it against the user.
	parsed, err := crypto.ParseDeviceCert(cert.Bytes())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(parsed.Verify(user.UserID()))
	fmt.Println(parsed.Name(), parsed.Created().Format(time.RFC3339))

	// Events signed by the device verify with its device ID.
	sig := dev.Sign("event", []byte("header"))
	fmt.Println(crypto.VerifyDevice(parsed.Device(), "event", []byte("header"), sig))
	// Output:
	// weftdev132yw8ht5p8cetl2jmvknewjawt9xwzdlrk2pyxlnwjyqrdq0dawqmu730u
	// <nil>
	// laptop 2026-01-01T00:00:00Z
	// <nil>
}

func ExampleDeviceSet() {
	user, _ := crypto.GenerateIdentity()
	laptop, _ := crypto.GenerateDeviceIdentity()
	phone, _ := crypto.GenerateDeviceIdentity()
	now := time.Now()

	set := crypto.NewDeviceSet(user.UserID())
	laptopCert, _ := user.CertifyDevice(laptop.DeviceID(), "laptop", now, set.Generation())
	phoneCert, _ := user.CertifyDevice(phone.DeviceID(), "phone", now, set.Generation())
	set.AddCert(laptopCert)
	set.AddCert(phoneCert)

	// The phone is lost: revoke it from the laptop, without the user key.
	rev, err := laptop.RevokeDevice(laptopCert, phone.DeviceID(), now)
	if err != nil {
		log.Fatal(err)
	}
	if err := set.AddRevocation(rev); err != nil {
		log.Fatal(err)
	}
	_, err = set.Status(phone.DeviceID())
	fmt.Println(errors.Is(err, crypto.ErrDeviceRevoked))
	_, err = set.Status(laptop.DeviceID())
	fmt.Println(err, len(set.Active()))
	// Output:
	// true
	// <nil> 1
}

func ExampleWrapThreadKeyToDevice() {
	dev, _ := crypto.GenerateDeviceIdentity()
	key, _ := crypto.NewThreadKey()
	var threadID [32]byte
	wrapped, err := crypto.WrapThreadKeyToDevice(dev.DeviceID(), threadID, 0, key)
	if err != nil {
		log.Fatal(err)
	}
	got, err := dev.UnwrapThreadKey(threadID, 0, wrapped)
	fmt.Println(got == key, err)
	// Output:
	// true <nil>
}
