package main

import (
	"net/http"
	"strconv"
	"time"
)

var probe = &http.Client{Timeout: time.Second}

func readyz(port int) bool {
	resp, err := probe.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
