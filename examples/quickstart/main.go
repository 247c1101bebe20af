// Command quickstart logs in to liveim with the Go client, creates and
// joins a room, sends a message and prints it as it comes back.
//
//	liveim token --data ./data --user alice --role admin > alice.json
//	go run ./examples/quickstart alice.json
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/liveim/liveim/auth"
	"github.com/liveim/liveim/client"
	"github.com/liveim/liveim/proto/liveimpb"
)

// tokenReply is what `liveim token` prints (and what an app server hands
// its client).
type tokenReply struct {
	AppID    string `json:"app_id"`
	AppSign  string `json:"app_sign"`
	AppToken string `json:"app_token"`
	Auth     struct {
		UserID    string `json:"user_id"`
		Nonce     string `json:"nonce"`
		Timestamp int64  `json:"timestamp"`
		Role      string `json:"role"`
	} `json:"auth"`
}

func main() {
	if len(os.Args) != 2 {
		log.Fatal("usage: quickstart TOKEN.json")
	}
	b, err := os.ReadFile(os.Args[1])
	if err != nil {
		log.Fatal(err)
	}
	var tr tokenReply
	if err := json.Unmarshal(b, &tr); err != nil {
		log.Fatal(err)
	}
	sign, err := auth.ParseAppSign(tr.AppSign) // the appSign says where the gateway is
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := client.Dial(ctx, sign.URLs[0])
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Login(ctx, client.Login{
		AppID:  tr.AppID,
		UserID: tr.Auth.UserID,
		Auth:   &liveimpb.UserAuth{Timestamp: tr.Auth.Timestamp, Nonce: tr.Auth.Nonce, Role: tr.Auth.Role, Token: tr.AppToken},
	}); err != nil {
		log.Fatal("login: ", err)
	}
	if _, err := c.CreateGroup(ctx, &liveimpb.CreateGroupRequest{GroupId: "quickstart", GroupName: "Quick start"}); err != nil {
		log.Fatal("createGroup (needs --role admin): ", err)
	}
	if _, err := c.JoinGroup(ctx, "quickstart"); err != nil {
		log.Fatal("joinGroup: ", err)
	}
	if _, err := c.SendGroupMessage(ctx, &liveimpb.SendGroupMessageRequest{GroupId: "quickstart", Type: 10001, Data: "hello, live room"}); err != nil {
		log.Fatal("sendGroupMessage: ", err)
	}
	for ev := range c.Events() {
		if m := ev.GetGroupMessage(); m != nil {
			fmt.Printf("received in %s from %s (seqnum %d): %s\n", m.GroupId, m.Sender.GetUserId(), m.Seqnum, m.Data)
			return
		}
	}
	log.Fatal("connection closed: ", c.Err())
}
