<?php
// vim: set ts=4 sw=4 sts=4 et:

/**
 * commerce-sync store events for X-Cart 5: one event waiting to be sent, or sent.
 */

namespace XLite\Module\CommerceSync\Webhooks\Model;

/**
 * The outbox row. Written in the same database transaction as the change it reports
 * (`Core\Outbox`), sent by the cron task `Core\Task\SendEvents`. `eventId` is the
 * `webhook-id` and `body` the exact bytes signed, so every retry is the same event to the
 * receiver, which answers a repeat 200 and starts nothing.
 *
 * Entity layout as X-Cart's own module entities (e.g. XLite\Module\XC\MailChimp\Model\MailChimpList
 * in X-Cart 5.3.2): Doctrine annotations, `\XLite\Model\AEntity`; X-Cart prefixes the table
 * name (`xlite_` by default, `table_prefix` of etc/config.default.php) and creates the
 * table when the store is re-deployed.
 *
 * @Entity (repositoryClass="\XLite\Module\CommerceSync\Webhooks\Model\Repo\Event")
 * @Table  (name="commerce_sync_events",
 *      uniqueConstraints={@UniqueConstraint (name="event_id", columns={"eventId"})},
 *      indexes={@Index (name="due", columns={"state", "nextAttemptAt"})}
 * )
 */
class Event extends \XLite\Model\AEntity
{
    const STATE_PENDING = 'pending';
    const STATE_SENT = 'sent';
    const STATE_REFUSED = 'refused';
    const STATE_GAVE_UP = 'gave_up';

    /**
     * @var integer
     *
     * @Id
     * @GeneratedValue (strategy="AUTO")
     * @Column         (type="integer", options={ "unsigned": true })
     */
    protected $id;

    /**
     * The webhook-id, `evt_` and 32 hex digits.
     *
     * @var string
     *
     * @Column (type="string", length=64)
     */
    protected $eventId = '';

    /**
     * @var string
     *
     * @Column (type="string", length=32)
     */
    protected $type = '';

    /**
     * The store's id of the record the event names.
     *
     * @var string
     *
     * @Column (type="string", length=200)
     */
    protected $recordId = '';

    /**
     * The JSON body, byte for byte as signed and sent.
     *
     * @var string
     *
     * @Column (type="text")
     */
    protected $body = '';

    /**
     * @var string
     *
     * @Column (type="string", length=16)
     */
    protected $state = self::STATE_PENDING;

    /**
     * @var integer
     *
     * @Column (type="integer")
     */
    protected $createdAt = 0;

    /**
     * @var integer
     *
     * @Column (type="integer")
     */
    protected $attempts = 0;

    /**
     * When the next attempt is due (Unix seconds).
     *
     * @var integer
     *
     * @Column (type="integer")
     */
    protected $nextAttemptAt = 0;

    /**
     * @var integer
     *
     * @Column (type="integer")
     */
    protected $sentAt = 0;

    /**
     * The last attempt's HTTP status or transport error, for the store's log and support.
     *
     * @var string
     *
     * @Column (type="string", length=255)
     */
    protected $lastError = '';

    /**
     * A new pending event (`Core\Outbox` writes the same row with one SQL insert).
     *
     * @param string  $type     Event type
     * @param string  $recordId Record id
     * @param integer $now      Unix seconds
     *
     * @return array Column => value
     */
    public static function newRow($type, $recordId, $now)
    {
        return array(
            'eventId'       => \XLite\Module\CommerceSync\Webhooks\Core\Signer::newEventId(),
            'type'          => $type,
            'recordId'      => (string) $recordId,
            'body'          => \XLite\Module\CommerceSync\Webhooks\Core\Signer::envelope($type, $recordId, $now),
            'state'         => static::STATE_PENDING,
            'createdAt'     => $now,
            'attempts'      => 0,
            'nextAttemptAt' => $now,
            'sentAt'        => 0,
            'lastError'     => '',
        );
    }

    // Explicit accessors: AEntity::__call maps getFooBar() to a property foo_bar, and these
    // properties are camelCase like the columns of X-Cart's Task entity (`triggerTime`).

    public function getId()
    {
        return $this->id;
    }

    public function getEventId()
    {
        return $this->eventId;
    }

    public function getBody()
    {
        return $this->body;
    }

    public function getState()
    {
        return $this->state;
    }

    public function getAttempts()
    {
        return $this->attempts;
    }

    /**
     * Record one attempt and what became of it.
     *
     * @param string  $state         New state
     * @param string  $lastError     '' or what went wrong
     * @param integer $now           Unix seconds
     * @param integer $nextAttemptAt When to try again (pending only)
     *
     * @return void
     */
    public function recordAttempt($state, $lastError, $now, $nextAttemptAt = 0)
    {
        $this->attempts++;
        $this->state = $state;
        $this->lastError = substr((string) $lastError, 0, 255);
        $this->nextAttemptAt = (int) $nextAttemptAt;
        if (static::STATE_SENT === $state) {
            $this->sentAt = (int) $now;
        }
    }
}
