package broker

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleInitProducerID gives an idempotent producer a new producer id with
// epoch 0. Ids come from blocks the active controller allocates through the
// metadata log (AllocateProducerIds, KIP-730), so they are unique across the
// cluster and across restarts. Transactional producers are not supported.
// A request that sets only one of producer_id and producer_epoch is
// INVALID_REQUEST, as in Kafka; one that sets both gets a new id too, as
// Kafka's coordinator gives a producer without a transactional id.
func (b *Broker) handleInitProducerID(rq *request, req *kmsg.InitProducerIDRequest) {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil && *req.TransactionalID == "" {
		// Kafka's coordinator answers an empty transactional id so.
		resp.ErrorCode = kerr.InvalidRequest.Code
		rq.reply(resp)
		return
	}
	if req.TransactionalID != nil {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		rq.log().Info("refusing a transactional producer: transactions are not supported", "transactional.id", *req.TransactionalID)
		rq.reply(resp)
		return
	}
	if (req.ProducerID == -1) != (req.ProducerEpoch == -1) {
		// Kafka's KafkaApis takes both unset or both set (KIP-360's
		// bump of an existing producer), nothing between.
		resp.ErrorCode = kerr.InvalidRequest.Code
		rq.log().Info("refusing InitProducerId with only one of producer_id and producer_epoch set", "producer_id", req.ProducerID, "producer_epoch", req.ProducerEpoch)
		rq.reply(resp)
		return
	}
	id, err := b.nextProducerID()
	if err != nil {
		rq.log().Warn("allocating a producer id", "err", err)
		resp.ErrorCode = errorCode(err)
		rq.reply(resp)
		return
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	rq.reply(resp)
}

// nextProducerID takes an id from the current block, asking the controller
// for a new block when it is used up.
func (b *Broker) nextProducerID() (int64, error) {
	b.producerIDs.Lock()
	defer b.producerIDs.Unlock()
	if b.producerIDs.next >= b.producerIDs.end {
		req := kmsg.NewPtrAllocateProducerIDsRequest()
		req.BrokerID, req.BrokerEpoch = b.cfg.NodeID, b.epoch.Load()
		ctx, cancel := b.stopContext(b.cfg.RequestTimeout)
		defer cancel()
		out, err := b.controller(ctx, req)
		if err != nil {
			return 0, fmt.Errorf("%w: %w", kerr.CoordinatorNotAvailable, err)
		}
		r := out.(*kmsg.AllocateProducerIDsResponse)
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			var ke *kerr.Error
			if errors.As(err, &ke) && ke == kerr.StaleBrokerEpoch {
				return 0, fmt.Errorf("%w: this broker is not registered yet", kerr.CoordinatorLoadInProgress)
			}
			return 0, err
		}
		b.producerIDs.next, b.producerIDs.end = r.ProducerIDStart, r.ProducerIDStart+int64(r.ProducerIDLen)
	}
	id := b.producerIDs.next
	b.producerIDs.next++
	return id, nil
}
